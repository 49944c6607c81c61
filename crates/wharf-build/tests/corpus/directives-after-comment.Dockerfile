# a comment
# syntax=example/syntax
FROM busybox
