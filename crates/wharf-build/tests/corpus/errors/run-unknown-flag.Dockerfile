FROM busybox
RUN --foo=bar echo
