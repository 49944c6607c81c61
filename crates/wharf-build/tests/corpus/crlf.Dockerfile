FROM busybox
RUN echo crlf \
  next
CMD ["sh"]
