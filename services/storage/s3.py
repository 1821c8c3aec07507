"""S3, or any S3-compatible server, behind the same Storage interface: boto3, SigV4 always."""

import logging
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from services.core.errors import NotFound, ServiceUnavailable
from services.recordings.download_names import content_disposition
from services.storage.protocol import READ_BLOCK, validate_key

log = logging.getLogger(__name__)
DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes
CHUNK_TAG = 'vr-kind=chunk'
UNAVAILABLE = 'audio storage is unavailable, please try again shortly'
_MISSING_OBJECT = {'404', 'NoSuchKey', 'NotFound'}
_MISSING_BUCKET = {'404', 'NoSuchBucket', 'NotFound'}
_DENIED = {'403', 'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken'}


def _client(*, region: str | None, endpoint_url: str | None, path_style: bool, max_connections: int) -> Any:
    config = Config(
        signature_version='s3v4',
        s3={'addressing_style': 'path' if path_style else 'auto'},
        retries={'mode': 'standard', 'max_attempts': 3},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=max_connections,
    )
    # One session per storage: boto3's default session is not safe to share between threads.
    return boto3.session.Session().client('s3', region_name=region, endpoint_url=endpoint_url, config=config)


def _code(error: ClientError) -> str:
    return str(error.response.get('Error', {}).get('Code', ''))


class S3Storage:
    def __init__(
        self,
        *,
        bucket: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        public_endpoint_url: str | None = None,
        path_style: bool = False,
        max_connections: int = 16,
        url_expiry_s: int = 3600,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.url_expiry_s = url_expiry_s
        self.client = _client(
            region=region, endpoint_url=endpoint_url, path_style=path_style, max_connections=max_connections
        )
        # A presigned URL is signed for its host, so browsers need one signed for the address they can reach.
        self._presigner = (
            _client(region=region, endpoint_url=public_endpoint_url, path_style=path_style, max_connections=1)
            if public_endpoint_url
            else self.client
        )
        self._uploads = ThreadPoolExecutor(max_connections, thread_name_prefix='s3-put')

    def put_bytes(self, key: str, data: bytes) -> None:
        """S3 answers a PUT only once the object is stored durably.

        Chunks are tagged so a bucket lifecycle rule can expire those of recordings nobody finished
        (lifecycle filters match prefixes or tags, and `recordings/*/chunks/` is neither).
        """
        tagging = {'Tagging': CHUNK_TAG} if '/chunks/' in key else {}
        with self._errors('put'):
            self.client.put_object(Bucket=self.bucket, Key=validate_key(key), Body=data, **tagging)

    def put_many(self, objects: Mapping[str, bytes]) -> None:
        """The PUTs side by side, each durable when S3 answers it; the first failure is raised after all ended."""
        if len(objects) == 1:
            self.put_bytes(*next(iter(objects.items())))
            return
        futures = [self._uploads.submit(self.put_bytes, key, data) for key, data in objects.items()]
        wait(futures)
        for future in futures:
            future.result()

    def put_file(self, key: str, path: Path) -> None:
        with self._errors('upload'):
            self.client.upload_file(str(path), self.bucket, validate_key(key))

    def copy_to(self, key: str, target: BinaryIO) -> int:
        written = 0
        with self._errors('get'):
            body = self.client.get_object(Bucket=self.bucket, Key=validate_key(key))['Body']
            for block in body.iter_chunks(READ_BLOCK):
                target.write(block)
                written += len(block)
        return written

    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        with self._errors('get'):
            response = self.client.get_object(Bucket=self.bucket, Key=validate_key(key), Range=f'bytes={start}-{end}')
            yield from response['Body'].iter_chunks(READ_BLOCK)

    def size(self, key: str) -> int:
        with self._errors('head'):
            return int(self.client.head_object(Bucket=self.bucket, Key=validate_key(key))['ContentLength'])

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        """Paginated listing, batched deletes: a 3-hour recording has over 10,000 chunk objects."""
        deleted = 0
        with self._errors('delete'):
            pages = self.client.get_paginator('list_objects_v2').paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                keys = [{'Key': item['Key']} for item in page.get('Contents', [])]
                for start in range(0, len(keys), DELETE_BATCH):
                    batch = keys[start : start + DELETE_BATCH]
                    response = self.client.delete_objects(Bucket=self.bucket, Delete={'Objects': batch, 'Quiet': True})
                    if errors := response.get('Errors'):
                        log.warning('S3 kept %d objects under %s: %s', len(errors), prefix, errors[0])
                        raise ServiceUnavailable(UNAVAILABLE)
                    deleted += len(batch)
        return deleted

    def list_children(self, prefix: str, *, after: str = '', limit: int = 1000) -> list[str]:
        """One delimited listing: S3 returns each child "folder" once, however many objects it holds."""
        options = {'StartAfter': f'{prefix}{after}/~'} if after else {}  # '~' sorts after every key character used
        with self._errors('list'):
            response = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=prefix, Delimiter='/', MaxKeys=min(limit, 1000), **options
            )
        names = [item['Prefix'][len(prefix) :].rstrip('/') for item in response.get('CommonPrefixes', [])]
        names += [item['Key'][len(prefix) :] for item in response.get('Contents', [])]
        return sorted(name for name in names if name > after)[:limit]

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as error:
            raise ServiceUnavailable(self.describe(error)) from error

    def ensure_bucket(self, *, create: bool) -> None:
        """At start-up: create the bucket if missing and allowed; any other problem is logged once, in one line."""
        try:
            self._head_or_create(create)
        except (ClientError, BotoCoreError) as error:
            log.error('S3 storage is not usable: %s; /api/healthz reports 503 until it is fixed', self.describe(error))

    def direct_url(self, key: str, *, content_type: str, download_name: str | None = None) -> str:
        """A presigned GET: the browser plays and seeks (Range) straight against S3, until the URL expires."""
        params = {'Bucket': self.bucket, 'Key': validate_key(key), 'ResponseContentType': content_type}
        if download_name:
            params['ResponseContentDisposition'] = content_disposition(download_name)
        with self._errors('presign'):
            return str(self._presigner.generate_presigned_url('get_object', Params=params, ExpiresIn=self.url_expiry_s))

    def close(self) -> None:
        self._uploads.shutdown(wait=False, cancel_futures=True)
        self.client.close()
        if self._presigner is not self.client:
            self._presigner.close()

    def describe(self, error: Exception) -> str:
        """One plain sentence an operator can act on."""
        if isinstance(error, ClientError) and _code(error) in _MISSING_BUCKET:
            return f'S3 bucket {self.bucket!r} does not exist (set VR_S3_CREATE_BUCKET=true to create it at start-up)'
        if isinstance(error, ClientError) and _code(error) in _DENIED:
            return f'access to S3 bucket {self.bucket!r} was denied: check the AWS credentials and the bucket policy'
        if isinstance(error, NoCredentialsError):
            return 'no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile or role)'
        if isinstance(error, EndpointConnectionError):
            return f'the S3 endpoint {self.endpoint_url or "of AWS"} cannot be reached'
        return f'S3 bucket {self.bucket!r} is not usable: {error}'

    def _head_or_create(self, create: bool) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if not (create and _code(error) in _MISSING_BUCKET):
                raise
            region = self.client.meta.region_name
            options = {'CreateBucketConfiguration': {'LocationConstraint': region}} if region != 'us-east-1' else {}
            try:
                self.client.create_bucket(Bucket=self.bucket, **options)
            except ClientError as create_error:  # another instance starting beside us may have just made it
                if _code(create_error) != 'BucketAlreadyOwnedByYou':
                    raise
            log.info('created S3 bucket %s', self.bucket)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """A missing object is NotFound; anything else is a retryable ServiceUnavailable, logged in one line."""
        try:
            yield
        except ClientError as error:
            if _code(error) in _MISSING_OBJECT and action != 'put':
                raise NotFound('audio not found') from error
            log.warning('S3 %s failed: %s', action, self.describe(error))
            raise ServiceUnavailable(UNAVAILABLE) from error
        except (BotoCoreError, Boto3Error) as error:
            log.warning('S3 %s failed: %s', action, self.describe(error))
            raise ServiceUnavailable(UNAVAILABLE) from error
