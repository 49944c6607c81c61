# escape=`
# escape=\
FROM busybox
