FROM busybox

  FOO bar
