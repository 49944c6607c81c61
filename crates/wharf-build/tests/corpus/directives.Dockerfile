# syntax=docker/dockerfile:1.7
#  ESCAPE = `
# check=skip=JSONArgsRecommended
FROM busybox
RUN echo a `
    b
# escape=\
RUN echo c \
CMD d
