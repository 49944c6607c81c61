FROM busybox
RUN <<EOF
echo hello
echo $HOME
EOF
RUN <<-"EOT" sh
	echo tabs stripped
		echo deeper
	EOT
RUN 3<<'A' cat /dev/fd/3 && cat <<B
no $expansion here
A
$expanded here
B
COPY <<one.txt <<"two.txt" /dest/
first ${X}
one.txt
second ${X}
two.txt
ADD --chmod=755 <<run.sh /usr/local/bin/run.sh
#!/bin/sh
echo run
run.sh
RUN ["echo", "<<EOF"]
CMD cat <<EOF
