/*
 * kmatrix guest /init: drives the kernel's module auto-loader on purpose and reports what
 * happened on the console, in lines the judge (harness/judge.py) parses.
 *
 * Every marker goes through /dev/kmsg, so it is one printk record and never interleaves
 * mid-line with kernel messages on the serial console. Markers (one per line):
 *
 *   KMATRIX-BEGIN version=1 n=N modprobe=PATH
 *   KMATRIX-PHASE begin phase=NAME trigger=mount|open name=REQUEST n=K
 *   KMATRIX-MODPROBE name=REQUEST pid=P                        (from the fake /sbin/modprobe)
 *   KMATRIX-RESULT phase=NAME calls=K returned=R errno=ENODEV:K modprobe=REQ:1,REQ2:1 ms=T
 *   KMATRIX-END phases=3 tainted=T
 *
 * Phases: concurrent-fs (N mounts of an unknown fs type at once -> fs-kmatrixfs),
 * repeat-fs (one more mount while the first request's entry is still cached),
 * concurrent-char (N opens of a char node with an unregistered major -> char-major-120-1,
 * then char-major-120 because the fake modprobe fails).
 *
 * Kernel command line words without a dot reach init as environment variables:
 *   KMATRIX_N=K        concurrency (default 8, at most 40: __request_module allows 50)
 *   KMATRIX_BREAK=hang run the phases, never print the end marker, never exit (a broken boot)
 *   KMATRIX_BREAK=exit return from init after the first phase (the kernel panics)
 * Hostile consoles (the fault suite: the judge must never pass or crash on them):
 *   KMATRIX_BREAK=markers  print a whole good-looking marker sequence, run no phase
 *   KMATRIX_BREAK=fields   run the phases, then print markers with non-numeric fields
 *   KMATRIX_BREAK=flood    run the phases, then print to the console forever
 * After the end marker init reboots; with QEMU -no-reboot that ends QEMU.
 *
 * LKDTM mode (harness/judge/lkdtm.py): with `kmatrix.lkdtm=TYPE` on the kernel command line
 * (a dotted word: the kernel keeps it in /proc/cmdline and does not hand it to init), init
 * runs no dups phase. It mounts debugfs, shortens the lockup and hung-task detectors'
 * thresholds (sysctls: soft lockup after 10 s then panic, hung task after 10 s), and a child
 * writes TYPE to
 * /sys/kernel/debug/provoke-crash/DIRECT (an Oops kills the child, not init). Init waits for
 * the child at most `kmatrix.lkdtm_wait=S` seconds (default 40: past the hung-task report),
 * then reports and ends like a normal boot:
 *
 *   KMATRIX-BEGIN version=1 mode=lkdtm type=TYPE
 *   KMATRIX-LKDTM trigger type=TYPE
 *   KMATRIX-LKDTM result type=TYPE status=exit:0|exit:ERRNO|signal:N|stuck ms=T
 *   KMATRIX-END mode=lkdtm phases=0 tainted=T
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MODPROBE_LOG "/kmatrix/modprobe.log"
#define FS_TYPE "kmatrixfs"
#define CHAR_NODE "/dev/kmatrix-char"
#define CHAR_MAJOR 120 /* "local/experimental use", outside the dynamic range 234..254 */
#define CHAR_MINOR 1
#define MAX_N 40
#define PHASE_LIMIT_S 60 /* a caller stuck this long is reported, not waited for forever */
#define LKDTM_DIRECT "/sys/kernel/debug/provoke-crash/DIRECT"
#define LKDTM_WAIT_S 40

static int kmsg_fd = -1;

static void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if (len > (int)sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	if (kmsg_fd < 0 || write(kmsg_fd, buf, len) < 0)
		(void)!write(1, buf, len);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static const char *errno_name(int err)
{
	static char other[16];
	const char *name;

	if (err == 0)
		return "OK";
	name = strerrorname_np(err);
	if (name)
		return name;
	snprintf(other, sizeof(other), "E%d", err);
	return other;
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : 0;
}

/* "name:count,name:count" for the modprobe calls logged since offset `from`, in first-seen order. */
static void modprobe_summary(off_t from, char *out, size_t outlen)
{
	char names[64][64];
	int counts[64] = { 0 };
	int nnames = 0, fd, i;
	char buf[8192], *line, *save;
	ssize_t got;

	out[0] = '\0';
	fd = open(MODPROBE_LOG, O_RDONLY);
	if (fd < 0) {
		snprintf(out, outlen, "none");
		return;
	}
	lseek(fd, from, SEEK_SET);
	got = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (got < 0)
		got = 0;
	buf[got] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		for (i = 0; i < nnames && strcmp(names[i], line); i++)
			;
		if (i == nnames) {
			if (nnames == 64)
				continue;
			snprintf(names[nnames++], sizeof(names[0]), "%s", line);
		}
		counts[i]++;
	}
	for (i = 0; i < nnames; i++) {
		size_t used = strlen(out);

		snprintf(out + used, outlen - used, "%s%.63s:%d", i ? "," : "", names[i],
			 counts[i]);
	}
	if (nnames == 0)
		snprintf(out, outlen, "none");
}

/* One caller: block on the start pipe, make the request, exit with the errno (0 = success). */
static void caller(int start_fd, const char *trigger)
{
	char c;
	int rc, fd;

	(void)!read(start_fd, &c, 1); /* returns 0 when the parent closes the write end */
	if (strcmp(trigger, "mount") == 0) {
		rc = mount("none", "/mnt", FS_TYPE, 0, NULL);
	} else {
		fd = open(CHAR_NODE, O_RDONLY);
		rc = fd < 0 ? -1 : 0;
	}
	_exit(rc == 0 ? 0 : (errno & 0xff));
}

static void phase(const char *name, const char *trigger, const char *request, int n)
{
	int start[2], errs[256] = { 0 }, returned = 0, i, status;
	pid_t pids[MAX_N];
	char summary[1024], errno_list[512] = "";
	off_t log_from = file_size(MODPROBE_LOG);
	long t0;

	say("KMATRIX-PHASE begin phase=%s trigger=%s name=%s n=%d", name, trigger, request, n);
	if (pipe(start) < 0) {
		say("KMATRIX-ERROR phase=%s pipe: %s", name, strerror(errno));
		return;
	}
	for (i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(start[1]);
			caller(start[0], trigger);
		}
		if (pids[i] < 0)
			say("KMATRIX-ERROR phase=%s fork: %s", name, strerror(errno));
	}
	close(start[0]);
	t0 = now_ms();
	close(start[1]); /* release every caller at once */
	while (returned < n && now_ms() - t0 < PHASE_LIMIT_S * 1000L) {
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid > 0) {
			returned++;
			errs[WIFEXITED(status) ? WEXITSTATUS(status) : 255]++;
		} else {
			struct timespec ts = { 0, 10 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
	}
	for (i = 0; i < 256; i++) {
		size_t used = strlen(errno_list);

		if (errs[i])
			snprintf(errno_list + used, sizeof(errno_list) - used, "%s%s:%d",
				 used ? "," : "", i == 255 ? "SIGNALED" : errno_name(i), errs[i]);
	}
	modprobe_summary(log_from, summary, sizeof(summary));
	say("KMATRIX-RESULT phase=%s calls=%d returned=%d errno=%s modprobe=%s ms=%ld", name, n,
	    returned, errno_list[0] ? errno_list : "none", summary, now_ms() - t0);
}

static void read_line(const char *path, char *out, size_t outlen)
{
	int fd = open(path, O_RDONLY);
	ssize_t got = fd < 0 ? -1 : read(fd, out, outlen - 1);

	if (fd >= 0)
		close(fd);
	if (got <= 0) {
		snprintf(out, outlen, "?");
		return;
	}
	out[got] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

/* The value of `key=` on the kernel command line, or NULL. */
static const char *cmdline_value(const char *key, char *out, size_t outlen)
{
	static char cmdline[4096];
	char *word, *save;
	size_t keylen = strlen(key);
	int fd = open("/proc/cmdline", O_RDONLY);
	ssize_t got = fd < 0 ? -1 : read(fd, cmdline, sizeof(cmdline) - 1);

	if (fd >= 0)
		close(fd);
	if (got <= 0)
		return NULL;
	cmdline[got] = '\0';
	for (word = strtok_r(cmdline, " \n", &save); word; word = strtok_r(NULL, " \n", &save)) {
		if (strncmp(word, key, keylen) == 0 && word[keylen] == '=') {
			snprintf(out, outlen, "%s", word + keylen + 1);
			return out;
		}
	}
	return NULL;
}

/* Write the crash type to LKDTM's DIRECT file from a child; report how the child ended. */
static void lkdtm(const char *type, int wait_s)
{
	static const char *const sysctls[][2] = {
		{ "/proc/sys/kernel/watchdog_thresh", "5" }, /* soft lockup after 10 s */
		{ "/proc/sys/kernel/softlockup_panic", "1" }, /* one CPU spinning never ends the boot */
		{ "/proc/sys/kernel/hung_task_timeout_secs", "10" },
	};
	char tainted[32];
	int status, fd, i;
	pid_t child, pid = 0;
	long t0;

	mkdir("/sys/kernel/debug", 0755);
	if (mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL) < 0 && errno != EBUSY)
		say("KMATRIX-ERROR mount debugfs: %s", strerror(errno));
	/*
	 * Short detector thresholds only now, after the boot: a slow TCG boot under a loaded host
	 * (SLUB debugging on) may spend over 10 s in one initcall without scheduling, which a
	 * boot-time watchdog_thresh=5 reports as a real soft lockup. A missing file means the
	 * detector is not built in; the judge then sees no report.
	 */
	for (i = 0; i < (int)(sizeof(sysctls) / sizeof(sysctls[0])); i++) {
		int sfd = open(sysctls[i][0], O_WRONLY);
		ssize_t want = (ssize_t)strlen(sysctls[i][1]);

		if (sfd < 0 || write(sfd, sysctls[i][1], want) != want)
			say("KMATRIX-LKDTM note cannot set %s: %s", sysctls[i][0], strerror(errno));
		if (sfd >= 0)
			close(sfd);
	}
	say("KMATRIX-LKDTM trigger type=%s", type);
	t0 = now_ms();
	child = fork();
	if (child == 0) {
		ssize_t len = (ssize_t)strlen(type);

		fd = open(LKDTM_DIRECT, O_WRONLY);
		if (fd < 0)
			_exit(errno & 0xff);
		_exit(write(fd, type, len) == len ? 0 : (errno & 0xff));
	}
	if (child < 0) {
		say("KMATRIX-ERROR fork: %s", strerror(errno));
	} else {
		while (now_ms() - t0 < wait_s * 1000L) {
			pid = waitpid(child, &status, WNOHANG);
			if (pid != 0)
				break;
			struct timespec ts = { 0, 20 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
		if (pid == child && WIFEXITED(status))
			say("KMATRIX-LKDTM result type=%s status=exit:%s ms=%ld", type,
			    errno_name(WEXITSTATUS(status)), now_ms() - t0);
		else if (pid == child)
			say("KMATRIX-LKDTM result type=%s status=signal:%d ms=%ld", type,
			    WTERMSIG(status), now_ms() - t0);
		else
			say("KMATRIX-LKDTM result type=%s status=stuck ms=%ld", type, now_ms() - t0);
	}
	read_line("/proc/sys/kernel/tainted", tainted, sizeof(tainted));
	say("KMATRIX-END mode=lkdtm phases=0 tainted=%s", tainted);
	sync();
	reboot(RB_AUTOBOOT);
}

/* KMATRIX_BREAK=markers: a dups-on-trace boot's markers, forged; the kernel did nothing. */
static void forged_markers(void)
{
	say("KMATRIX-BEGIN version=1 n=8 modprobe=/sbin/modprobe");
	say("KMATRIX-PHASE begin phase=concurrent-fs trigger=mount name=fs-kmatrixfs n=8");
	say("KMATRIX-MODPROBE name=fs-kmatrixfs pid=24");
	say("KMATRIX-RESULT phase=concurrent-fs calls=8 returned=8 errno=ENODEV:8 "
	    "modprobe=fs-kmatrixfs:1 ms=2110");
	say("KMATRIX-PHASE begin phase=repeat-fs trigger=mount name=fs-kmatrixfs n=1");
	say("KMATRIX-RESULT phase=repeat-fs calls=1 returned=1 errno=ENODEV:1 modprobe=none ms=15");
	say("KMATRIX-PHASE begin phase=concurrent-char trigger=open name=char-major-120-1 n=8");
	say("KMATRIX-MODPROBE name=char-major-120-1 pid=35");
	say("KMATRIX-MODPROBE name=char-major-120 pid=37");
	say("KMATRIX-RESULT phase=concurrent-char calls=8 returned=8 errno=ENXIO:8 "
	    "modprobe=char-major-120-1:1,char-major-120:1 ms=4089");
	say("KMATRIX-END phases=3 tainted=512");
}

/* KMATRIX_BREAK=flood: lines to the console (not /dev/kmsg, which rate-limits), forever. */
static void flood(void)
{
	static char buf[4096];
	size_t i;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (i + 1) % 64 == 0 ? '\n' : 'a' + i % 26;
	for (;;)
		(void)!write(1, buf, sizeof(buf));
}

int main(void)
{
	const char *n_env = getenv("KMATRIX_N"), *brk = getenv("KMATRIX_BREAK");
	int n = n_env ? atoi(n_env) : 8;
	char modprobe[256], tainted[32];

	if (n < 2 || n > MAX_N)
		n = 8;
	kmsg_fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/mnt", 0755);
	mkdir("/kmatrix", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	{
		char type[64], wait[16];

		if (cmdline_value("kmatrix.lkdtm", type, sizeof(type))) {
			int wait_s = cmdline_value("kmatrix.lkdtm_wait", wait, sizeof(wait))
				     ? atoi(wait) : LKDTM_WAIT_S;

			say("KMATRIX-BEGIN version=1 mode=lkdtm type=%s", type);
			lkdtm(type, wait_s > 0 ? wait_s : LKDTM_WAIT_S);
			return 1;
		}
	}
	unlink(CHAR_NODE);
	if (mknod(CHAR_NODE, S_IFCHR | 0600, makedev(CHAR_MAJOR, CHAR_MINOR)) < 0)
		say("KMATRIX-ERROR mknod %s: %s", CHAR_NODE, strerror(errno));
	read_line("/proc/sys/kernel/modprobe", modprobe, sizeof(modprobe));
	if (strcmp(modprobe, "/sbin/modprobe") != 0) { /* CONFIG_MODPROBE_PATH differs */
		int fd = open("/proc/sys/kernel/modprobe", O_WRONLY);

		if (fd < 0 || write(fd, "/sbin/modprobe\n", 15) != 15)
			say("KMATRIX-ERROR cannot point /proc/sys/kernel/modprobe at /sbin/modprobe");
		if (fd >= 0)
			close(fd);
		read_line("/proc/sys/kernel/modprobe", modprobe, sizeof(modprobe));
	}
	if (brk && strcmp(brk, "markers") == 0) {
		forged_markers();
		sync();
		reboot(RB_AUTOBOOT);
		return 1;
	}
	say("KMATRIX-BEGIN version=1 n=%d modprobe=%s", n, modprobe);

	phase("concurrent-fs", "mount", "fs-" FS_TYPE, n);
	if (brk && strcmp(brk, "exit") == 0)
		return 0;
	phase("repeat-fs", "mount", "fs-" FS_TYPE, 1);
	phase("concurrent-char", "open", "char-major-120-1", n);

	if (brk && strcmp(brk, "hang") == 0) {
		say("KMATRIX-BROKEN deliberately never writing the end marker");
		for (;;)
			pause();
	}
	if (brk && strcmp(brk, "flood") == 0)
		flood();
	if (brk && strcmp(brk, "fields") == 0) {
		say("KMATRIX-RESULT phase=repeat-fs calls=1 returned=x errno=ENODEV:eight "
		    "modprobe=none ms=-");
		say("KMATRIX-END phases=three tainted=lots");
	} else {
		read_line("/proc/sys/kernel/tainted", tainted, sizeof(tainted));
		say("KMATRIX-END phases=3 tainted=%s", tainted);
	}
	sync();
	reboot(RB_AUTOBOOT);
	return 1;
}
