"""NiceGUI pages: one module per page, plus the shared frame and the recorder element."""
