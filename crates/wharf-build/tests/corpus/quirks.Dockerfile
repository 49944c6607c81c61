from busybox as Builder
arg A="x y" B='q' C
Env K=v
onbuild run echo lower
COPY -- --not-a-flag /dst
COPY --from="build er" a b
RUN --mount="type=bind,target=/a b" --network=host true
RUN    leading   and   inner   spaces   kept   
CMD echo "# not a comment"
LABEL "quoted key"="v" multi="line \
continued"
EXPOSE 80/tcp
HEALTHCHECK --interval=0s --retries=0 CMD true
USER 1000
WORKDIR relative/dir
