FROM busybox
ARG A=${:x}
FROM busybox
