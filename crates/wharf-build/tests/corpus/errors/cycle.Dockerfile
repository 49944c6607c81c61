FROM busybox AS a
COPY --from=b /x /x
FROM busybox AS b
COPY --from=a /y /y
