FROM busybox
HEALTHCHECK --retries=three CMD true
