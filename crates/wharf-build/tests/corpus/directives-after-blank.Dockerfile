
# escape=`
FROM busybox
RUN echo \
  b
