FROM busybox
RUN apt-get update && \
    # a comment inside the continuation is dropped
    apt-get install -y \

    curl
  # indented comment line
RUN echo "trailing spaces after the escape" \   
    done
ENV A=1 \
    B=2
RUN echo "unterminated at EOF" \
