ARG A
RUN true
FROM busybox
