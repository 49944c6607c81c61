FROM busybox
COPY --from=a --from=b x y
