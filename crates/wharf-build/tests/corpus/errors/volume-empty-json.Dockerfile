FROM busybox
VOLUME ["/a", "  "]
