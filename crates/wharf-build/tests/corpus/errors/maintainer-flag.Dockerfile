FROM busybox
MAINTAINER --boo joe@example.com
