"""What the tests start and drive besides the app: browsers that Playwright cannot reach."""
