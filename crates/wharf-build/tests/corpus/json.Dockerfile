FROM busybox
CMD ["echo", "a b", "\u00e9"]
ENTRYPOINT []
RUN [ "sh", "-c", "echo json" ]
RUN [not json
RUN ["unterminated"
CMD ['single quotes are not json']
SHELL ["/bin/sh", "-eux", "-c"]
VOLUME ["/a", "/b c"]
VOLUME /d /e
COPY ["a b", "c", "/dst/"]
CMD
