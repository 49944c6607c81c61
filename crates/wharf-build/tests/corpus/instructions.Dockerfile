ARG BASE=busybox
FROM --platform=$BUILDPLATFORM ${BASE}:latest AS Build-1
ENV LEGACY value with spaces
ENV A=1 B="two words" C='single $quoted' D=e\ f
ARG V1 V2=x
LABEL org.opencontainers.image.title="wharf" version=1
LABEL legacy label value
EXPOSE 80 443/tcp 53/udp 8000-8010
VOLUME /data
USER app:app
WORKDIR /src/$A
STOPSIGNAL SIGTERM
MAINTAINER Jane <jane@example.com>
ONBUILD RUN echo triggered
ONBUILD COPY --from=x . /y
HEALTHCHECK --interval=30s --timeout=1m30s --start-period=5s --start-interval=1s --retries=3 CMD curl -f http://localhost/ || exit 1
HEALTHCHECK CMD ["/bin/check", "--fast"]
HEALTHCHECK NONE
FROM scratch
COPY --from=build-1 --chown=1000:1000 --chmod=0644 --link /out/a /out/b /app/
COPY --parents --exclude=*.md --exclude=*.txt src/ /src/
ADD --keep-git-dir=true https://github.com/example/repo.git#main /repo
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/a.tar.gz /
ADD --link=false a.tar /x/
RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1,gid=2 \
    --mount=type=bind,from=build-1,source=/out,target=/in,rw \
    --mount=type=secret,id=token,env=TOKEN,required \
    --mount=type=tmpfs,target=/tmp,size=64m \
    --mount=type=ssh \
    --network=none --security=sandbox \
    make
run lowercase instruction
