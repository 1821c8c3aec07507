"""What the tests start and drive besides the app: Redis, HAProxy, the container image, and browsers that Playwright
cannot reach."""
