FROM busybox
COPY --from=1 / /
FROM busybox
