FROM busybox
HEALTHCHECK --interval=5s CMD
