FROM busybox
LABEL bom=stripped
