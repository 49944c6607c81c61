FROM busybox
RUN echo ÿ
