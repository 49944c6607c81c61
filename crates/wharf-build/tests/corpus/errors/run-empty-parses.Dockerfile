FROM busybox
RUN
