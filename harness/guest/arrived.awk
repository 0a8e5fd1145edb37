# kmatrix guest: are all of init's current phase's requests for `name` in the kernel log?
# Input: the kernel log (busybox dmesg). Exit 0 when, after the last KMATRIX-PHASE line
# (`KMATRIX-PHASE begin ... n=K`), K requests for `name` reached the kernel: each one either
# ran the fake modprobe (`KMATRIX-MODPROBE name=NAME pid=P`) or was reported by dups as a
# duplicate (`... duplicate request for module NAME`, with or without its trace's WARNING).
# Exit 1 otherwise. Names are matched whole: char-major-120 is not char-major-120-1.
# Used as: busybox dmesg | busybox awk -v name=NAME -f /kmatrix/arrived.awk
/KMATRIX-PHASE begin / {
	n = 0
	seen = 0
	for (i = 1; i <= NF; i++)
		if ($i ~ /^n=[0-9]+$/)
			n = substr($i, 3) + 0
}
/KMATRIX-MODPROBE name=/ {
	for (i = 1; i <= NF; i++)
		if ($i == "name=" name)
			seen++
}
/duplicate request for module / && $NF == name {
	seen++
}
END {
	exit !(n > 0 && seen >= n)
}
