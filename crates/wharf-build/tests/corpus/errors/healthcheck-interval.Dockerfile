FROM busybox
HEALTHCHECK --interval=10 CMD true
