FROM busybox
COPY --link=maybe x y
