FROM busybox AS a
RUN --mount=from=c,target=/c true
FROM busybox AS b
COPY --from=a / /
FROM busybox AS c
COPY --from=b / /
