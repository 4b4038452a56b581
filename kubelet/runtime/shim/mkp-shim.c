/*
 * mkp-shim: the parent of one container attempt, like conmon or containerd-shim.
 *
 * It starts the container's process (optionally in new pid/mount/uts/ipc namespaces,
 * another network namespace, a pivoted root filesystem, cgroups, another uid/gid),
 * writes its stdout/stderr to a CRI-format log file, feeds its stdin from a FIFO, reaps
 * it and records how it ended in the state directory. It runs in a session of its own,
 * detached from whoever started it, so the container outlives a kubelet restart.
 *
 *   mkp-shim --state DIR --log FILE [options] -- ARGV...
 *
 * Start protocol: the invoking process exits at once; the detached shim reports on the
 * inherited stdout one line, "ok <pid>" once the container's program has been exec'd, or
 * "error <message>" when it could not be started (then DIR/exit has exit_code=128 and
 * error=<message>, as a CRI StartError), and then closes stdout and stderr.
 * Files in DIR: shim.pid, pid (container's host pid), exit (exit_code, signal, started,
 * finished in unix ns, error), and the FIFOs stdin and resize.
 *
 * Signals sent to the container's process group never reach the shim (the container is
 * a session and group leader of its own). SIGTERM/SIGINT sent to the shim itself are
 * forwarded to the container's group. SIGHUP and SIGPIPE are ignored. If the shim is
 * killed outright, the container gets SIGKILL (parent-death signal): no orphans.
 * When the container's main process ends, what is left of its process group and any
 * orphans it left (the shim is their subreaper) are killed too, as a pid namespace would.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE 16384 /* containerd's default max_container_log_line_size */
#define MAX_LIST 128
#define MSG_SIZE 4096
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DRAIN_MS 1000 /* how long output is still read after the container exited */

struct options {
    const char *state, *log, *cwd, *env_file, *netns, *hostname, *rootfs;
    int stdin_, stdin_once, tty, readonly_rootfs, unshare_flags;
    const char *mounts[MAX_LIST];
    int nmounts;
    const char *cgroups[MAX_LIST];
    int ncgroups;
    long uid, gid;
    char **argv;
    char **envp;
};

struct stream {
    int fd;
    const char *name;
    size_t len;
    char buf[MAX_LINE];
};

static struct options opt = {.uid = -1, .gid = -1};
static int log_fd = -1;

/* ---------- small helpers ---------- */

/* snprintf that truncates silently: every buffer here is sized for sane paths and a cut
 * message is better than none. */
__attribute__((format(printf, 3, 4))) static int fmt(char *buf, size_t size, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(buf, size, format, ap);
    va_end(ap);
    return n < 0 ? 0 : (size_t)n >= size ? (int)size - 1 : n;
}

static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mkp-shim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* strerror as Go spells it (lowercase first letter): runc's messages come from Go. */
static const char *go_strerror(int err)
{
    static char buf[256];
    fmt(buf, sizeof buf, "%s", strerror(err));
    buf[0] = (char)tolower((unsigned char)buf[0]);
    return buf;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Go's time.RFC3339Nano in UTC: trailing zeros of the fraction trimmed. */
static size_t rfc3339nano(char *out, size_t size, long long ns)
{
    time_t sec = (time_t)(ns / 1000000000LL);
    long frac = (long)(ns % 1000000000LL);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac) {
        char digits[16];
        fmt(digits, sizeof digits, "%09ld", frac);
        int end = 9;
        while (end > 0 && digits[end - 1] == '0')
            end--;
        digits[end] = '\0';
        n += (size_t)fmt(out + n, size - n, ".%s", digits);
    }
    n += (size_t)fmt(out + n, size - n, "Z");
    return n;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t w = write(fd, data, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Write DIR/name through a temporary file and rename, so readers never see half. */
static int write_state_file(const char *name, const char *content)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    fmt(path, sizeof path, "%s/%s", opt.state, name);
    fmt(tmp, sizeof tmp, "%s/.%s.tmp.%d", opt.state, name, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, content, strlen(content));
    if (close(fd) < 0 || rc < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void append_str(char ***list, size_t *n, size_t *cap, char *s)
{
    if (*n + 2 > *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *list = realloc(*list, *cap * sizeof **list);
        if (!*list)
            die_usage("out of memory");
    }
    (*list)[(*n)++] = s;
    (*list)[*n] = NULL;
}

/* NUL-separated KEY=VALUE entries: the container's whole environment. */
static char **read_env_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die_usage("--env-file %s: %s", path, strerror(errno));
    size_t size = 0, cap = 65536;
    char *data = malloc(cap + 1);
    for (;;) {
        if (!data)
            die_usage("out of memory");
        ssize_t r = read(fd, data + size, cap - size);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die_usage("--env-file %s: %s", path, strerror(errno));
        if (r == 0)
            break;
        size += (size_t)r;
        if (size == cap) {
            cap *= 2;
            data = realloc(data, cap + 1);
        }
    }
    close(fd);
    data[size] = '\0';
    char **env = NULL;
    size_t n = 0, ecap = 0;
    append_str(&env, &n, &ecap, NULL);
    n = 0;
    for (size_t i = 0; i < size;) {
        size_t len = strlen(data + i);
        if (len) {
            if (!strchr(data + i, '='))
                die_usage("--env-file %s: entry without '=': %s", path, data + i);
            append_str(&env, &n, &ecap, data + i);
        }
        i += len + 1;
    }
    return env;
}

static const char *env_get(char **envp, const char *key)
{
    size_t klen = strlen(key);
    for (char **e = envp; e && *e; e++)
        if (!strncmp(*e, key, klen) && (*e)[klen] == '=')
            return *e + klen + 1;
    return NULL;
}

static int parse_unshare(const char *list)
{
    int flags = 0;
    char *copy = strdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "pid"))
            flags |= CLONE_NEWPID;
        else if (!strcmp(tok, "mount"))
            flags |= CLONE_NEWNS;
        else if (!strcmp(tok, "uts"))
            flags |= CLONE_NEWUTS;
        else if (!strcmp(tok, "ipc"))
            flags |= CLONE_NEWIPC;
        else
            die_usage("--unshare: unknown namespace %s (pid, mount, uts, ipc)", tok);
    }
    free(copy);
    return flags;
}

static long parse_id(const char *name, const char *value)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || *end || v < 0 || v > 0x7fffffffL)
        die_usage("%s: not a numeric id: %s", name, value);
    return v;
}

/* The shim runs in / (it must not pin the caller's directory): paths become absolute. */
static const char *absolute(const char *path)
{
    if (!path || path[0] == '/')
        return path;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        die_usage("getcwd: %s", strerror(errno));
    char *out = malloc(strlen(cwd) + strlen(path) + 2);
    if (!out)
        die_usage("out of memory");
    sprintf(out, "%s/%s", cwd, path);
    return out;
}

static void parse_args(int argc, char **argv)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VALUE() (v ? (i++, v) : (die_usage("%s needs a value", a), v))
        if (!strcmp(a, "--"))
            break;
        else if (!strcmp(a, "--state")) opt.state = VALUE();
        else if (!strcmp(a, "--log")) opt.log = VALUE();
        else if (!strcmp(a, "--cwd")) opt.cwd = VALUE();
        else if (!strcmp(a, "--env-file")) opt.env_file = VALUE();
        else if (!strcmp(a, "--netns")) opt.netns = VALUE();
        else if (!strcmp(a, "--hostname")) opt.hostname = VALUE();
        else if (!strcmp(a, "--rootfs")) opt.rootfs = VALUE();
        else if (!strcmp(a, "--unshare")) opt.unshare_flags |= parse_unshare(VALUE());
        else if (!strcmp(a, "--uid")) opt.uid = parse_id(a, VALUE());
        else if (!strcmp(a, "--gid")) opt.gid = parse_id(a, VALUE());
        else if (!strcmp(a, "--stdin")) opt.stdin_ = 1;
        else if (!strcmp(a, "--stdin-once")) opt.stdin_once = 1;
        else if (!strcmp(a, "--tty")) opt.tty = 1;
        else if (!strcmp(a, "--readonly-rootfs")) opt.readonly_rootfs = 1;
        else if (!strcmp(a, "--mount")) {
            if (opt.nmounts == MAX_LIST)
                die_usage("too many --mount");
            opt.mounts[opt.nmounts++] = VALUE();
        } else if (!strcmp(a, "--cgroup")) {
            if (opt.ncgroups == MAX_LIST)
                die_usage("too many --cgroup");
            opt.cgroups[opt.ncgroups++] = VALUE();
        } else
            die_usage("unknown option %s", a);
#undef VALUE
    }
    if (!opt.state || !opt.log)
        die_usage("usage: mkp-shim --state DIR --log FILE [options] -- ARGV...");
    if (i >= argc - 1)
        die_usage("no command after --");
    opt.argv = argv + i + 1;
    opt.state = absolute(opt.state);
    opt.log = absolute(opt.log);
    opt.rootfs = absolute(opt.rootfs);
    opt.netns = absolute(opt.netns);
    for (int c = 0; c < opt.ncgroups; c++)
        opt.cgroups[c] = absolute(opt.cgroups[c]);
    if (opt.stdin_once)
        opt.stdin_ = 1;
    if (opt.hostname && !(opt.unshare_flags & CLONE_NEWUTS))
        die_usage("--hostname needs --unshare uts");
    if ((opt.rootfs || opt.readonly_rootfs || opt.nmounts) && !(opt.unshare_flags & CLONE_NEWNS))
        die_usage("--rootfs, --mount and --readonly-rootfs need --unshare mount");
    if ((opt.readonly_rootfs || opt.nmounts) && !opt.rootfs)
        die_usage("--mount and --readonly-rootfs need --rootfs");
}

/* ---------- the container's side (runs in the forked child) ---------- */

static int err_fd = -1; /* CLOEXEC pipe to the shim: a message means "could not start" */
static pid_t shim_pid; /* as the container sees its parent; 0 in a new pid namespace */

static void child_fail(const char *fmt, ...)
{
    char msg[MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n > 0)
        write_all(err_fd, msg, strlen(msg));
    _exit(128);
}

static void mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    fmt(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, mode);
            *p = '/';
        }
    }
    mkdir(buf, mode);
}

/* A mount target for SRC: a directory, or an empty file when SRC is not a directory. */
static void make_target(const char *src, const char *target)
{
    struct stat st;
    if (stat(target, &st) == 0)
        return;
    if (stat(src, &st) == 0 && !S_ISDIR(st.st_mode)) {
        char parent[PATH_MAX];
        fmt(parent, sizeof parent, "%s", target);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = '\0';
            mkdir_p(parent, 0755);
        }
        int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
    } else {
        mkdir_p(target, 0755);
    }
}

static void bind(const char *src, const char *target, int ro)
{
    make_target(src, target);
    if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) < 0)
        child_fail("error mounting \"%s\" to rootfs at \"%s\": %s", src, target, go_strerror(errno));
    if (ro && mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
        child_fail("error remounting \"%s\" read-only: %s", target, go_strerror(errno));
}

/* A minimal /dev: tmpfs with the usual device nodes bound from the host, devpts, shm. */
static void setup_dev(const char *root)
{
    static const char *nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    char dev[PATH_MAX], path[PATH_MAX], host[64];
    fmt(dev, sizeof dev, "%s/dev", root);
    mkdir_p(dev, 0755);
    if (mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") < 0)
        child_fail("error mounting tmpfs on %s: %s", dev, go_strerror(errno));
    for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
        fmt(path, sizeof path, "%s/%s", dev, nodes[i]);
        fmt(host, sizeof host, "/dev/%s", nodes[i]);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        if (fd >= 0)
            close(fd);
        if (mount(host, path, NULL, MS_BIND, NULL) < 0)
            child_fail("error binding %s: %s", host, go_strerror(errno));
    }
    fmt(path, sizeof path, "%s/pts", dev);
    mkdir(path, 0755);
    if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") == 0) {
        fmt(path, sizeof path, "%s/ptmx", dev);
        symlink("pts/ptmx", path);
    }
    fmt(path, sizeof path, "%s/shm", dev);
    mkdir(path, 01777);
    mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
    static const char *links[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
                                     {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
    for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
        fmt(path, sizeof path, "%s/%s", dev, links[i][1]);
        symlink(links[i][0], path);
    }
}

static void mount_proc(const char *root)
{
    char path[PATH_MAX];
    fmt(path, sizeof path, "%s/proc", root);
    mkdir(path, 0555);
    if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        child_fail("error mounting proc to rootfs at \"/proc\": %s", go_strerror(errno));
}

static void setup_rootfs(void)
{
    const char *root = opt.rootfs;
    char target[PATH_MAX];
    if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0) /* pivot_root needs a mount point */
        child_fail("error binding rootfs %s: %s", root, go_strerror(errno));
    setup_dev(root);
    for (int i = 0; i < opt.nmounts; i++) {
        char spec[PATH_MAX];
        fmt(spec, sizeof spec, "%s", opt.mounts[i]);
        int ro = 0;
        size_t len = strlen(spec);
        if (len > 3 && (!strcmp(spec + len - 3, ":ro") || !strcmp(spec + len - 3, ":rw"))) {
            ro = spec[len - 2] == 'r' && spec[len - 1] == 'o';
            spec[len - 3] = '\0';
        }
        char *colon = strchr(spec, ':');
        if (!colon || colon == spec || colon[1] != '/')
            child_fail("invalid --mount %s (SRC:DST[:ro], DST absolute)", opt.mounts[i]);
        *colon = '\0';
        fmt(target, sizeof target, "%s%s", root, colon + 1);
        bind(spec, target, ro);
    }
    mount_proc(root);
    fmt(target, sizeof target, "%s/sys", root);
    mkdir(target, 0555);
    mount("sysfs", target, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL); /* best effort */
    if (opt.cwd) {
        fmt(target, sizeof target, "%s/%s", root, opt.cwd);
        mkdir_p(target, 0755); /* runc creates a missing working directory */
    }
    if (opt.readonly_rootfs && mount(NULL, root, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
        child_fail("error remounting rootfs read-only: %s", go_strerror(errno));
    if (chdir(root) < 0)
        child_fail("chdir %s: %s", root, go_strerror(errno));
    if (syscall(SYS_pivot_root, ".", ".") == 0) {
        if (umount2(".", MNT_DETACH) < 0)
            child_fail("unmount old root: %s", go_strerror(errno));
    } else if (chroot(".") < 0) {
        child_fail("pivot_root and chroot %s: %s", root, go_strerror(errno));
    }
    if (chdir("/") < 0)
        child_fail("chdir /: %s", go_strerror(errno));
}

static void setup_namespaces(void)
{
    int other = opt.unshare_flags & ~CLONE_NEWPID; /* the pid namespace was made by the shim */
    if (other && unshare(other) < 0)
        child_fail("unshare: %s", go_strerror(errno));
    if (opt.netns) {
        int fd = open(opt.netns, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
            child_fail("failed to join network namespace %s: %s", opt.netns, go_strerror(errno));
        close(fd);
    }
    if (opt.hostname && sethostname(opt.hostname, strlen(opt.hostname)) < 0)
        child_fail("sethostname: %s", go_strerror(errno));
    if (opt.unshare_flags & CLONE_NEWNS) {
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            child_fail("make / private: %s", go_strerror(errno));
        if (opt.rootfs)
            setup_rootfs();
        else if (opt.unshare_flags & CLONE_NEWPID)
            mount_proc(""); /* the new pid namespace's /proc over the host's */
    }
}

static void set_user(void)
{
    if (opt.gid >= 0) {
        if (setgroups(0, NULL) < 0 || setgid((gid_t)opt.gid) < 0)
            child_fail("setgid %ld: %s", opt.gid, go_strerror(errno));
    }
    if (opt.uid >= 0) {
        if (opt.gid < 0 && setgroups(0, NULL) < 0)
            child_fail("setgroups: %s", go_strerror(errno));
        if (setuid((uid_t)opt.uid) < 0)
            child_fail("setuid %ld: %s", opt.uid, go_strerror(errno));
    }
}

/* 0 when `path` is an executable regular file, else an errno value (Go's findExecutable). */
static int find_executable(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return errno;
    if (S_ISDIR(st.st_mode) || !(st.st_mode & 0111))
        return EACCES;
    return 0;
}

/* Resolve argv[0] against the container's PATH, with the messages Go's exec.LookPath
 * (which runc uses) gives for a missing or non-executable program. */
static void look_path(const char *name, char *out, size_t size)
{
    if (!*name)
        child_fail("exec: \"\": executable file not found in $PATH");
    if (strchr(name, '/')) {
        int err = find_executable(name);
        if (err == EACCES)
            child_fail("exec: \"%s\": permission denied", name);
        if (err)
            child_fail("exec: \"%s\": stat %s: %s", name, name, go_strerror(err));
        fmt(out, size, "%s", name);
        return;
    }
    const char *path = env_get(opt.envp, "PATH");
    if (!path)
        path = DEFAULT_PATH;
    const char *p = path;
    for (;;) {
        const char *end = strchrnul(p, ':');
        int len = (int)(end - p);
        fmt(out, size, "%.*s/%s", len ? len : 1, len ? p : ".", name);
        if (find_executable(out) == 0)
            return;
        if (!*end)
            break;
        p = end + 1;
    }
    child_fail("exec: \"%s\": executable file not found in $PATH", name);
}

static void reset_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL); /* SIG_IGN survives exec: undo the shim's */
}

static void child_main(int sync_fd, int in_fd, int out_fd, int errout_fd, const char *pty_slave)
{
    reset_signals();
    setsid(); /* its own session and process group: group signals never hit the shim */
    if (pty_slave) {
        int slave = open(pty_slave, O_RDWR);
        if (slave < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
            child_fail("open console %s: %s", pty_slave, go_strerror(errno));
        in_fd = out_fd = errout_fd = slave;
    }
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(errout_fd, 2) < 0)
        child_fail("dup2: %s", go_strerror(errno));
    char go;
    while (read(sync_fd, &go, 1) < 0 && errno == EINTR) /* the shim placed us in cgroups */
        ;
    setup_namespaces();
    set_user();
    if (opt.cwd && chdir(opt.cwd) < 0)
        child_fail("chdir to cwd (\"%s\") set in config.json failed: %s", opt.cwd, go_strerror(errno));
    char path[PATH_MAX];
    look_path(opt.argv[0], path, sizeof path);
    /* Die with the shim (set after the uid change, which clears it): a shim killed by
     * `mkp down` or by hand must not leave its container behind, unowned. The kubelet's
     * death does not matter: the shim survives that. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (shim_pid && getppid() != shim_pid)
        _exit(137); /* the shim is already gone */
    syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
    execve(path, opt.argv, opt.envp);
    /* The program exists but cannot run (exec format error...): the container starts and
     * says so on its stderr, as with runc, where such errors show in `kubectl logs`. */
    char msg[MSG_SIZE];
    fmt(msg, sizeof msg, "exec %s: %s\n", path, go_strerror(errno));
    write_all(2, msg, strlen(msg));
    _exit(1);
}

/* ---------- the shim's side ---------- */

static void log_line(struct stream *s, const char *data, size_t len, int partial)
{
    char head[96];
    size_t n = rfc3339nano(head, sizeof head, now_ns());
    n += (size_t)fmt(head + n, sizeof head - n, " %s %c ", s->name, partial ? 'P' : 'F');
    struct iovec iov[3] = {{head, n}, {(void *)data, len}, {"\n", 1}};
    /* One writev on an O_APPEND file: lines of the two streams never interleave. A short
     * write means a full disk, where nothing better can be done. */
    while (writev(log_fd, iov, 3) < 0 && errno == EINTR)
        ;
}

/* Log complete lines; a line that fills the buffer is logged as a partial (P) one. */
static void flush_lines(struct stream *s, int eof)
{
    size_t start = 0;
    for (;;) {
        char *nl = memchr(s->buf + start, '\n', s->len - start);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (s->buf + start));
        if (len && s->buf[start + len - 1] == '\r')
            len--; /* like bufio.ReadLine: "\r\n" ends a line too (tty output) */
        log_line(s, s->buf + start, len, 0);
        start = (size_t)(nl - s->buf) + 1;
    }
    if (start) {
        memmove(s->buf, s->buf + start, s->len - start);
        s->len -= start;
    }
    if (s->len == MAX_LINE || (eof && s->len)) {
        log_line(s, s->buf, s->len, !eof);
        s->len = 0;
    }
}

static void read_stream(struct stream *s)
{
    ssize_t r = read(s->fd, s->buf + s->len, MAX_LINE - s->len);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) { /* EOF, or EIO from a pty master whose slave is closed */
        flush_lines(s, 1);
        close(s->fd);
        s->fd = -1;
        return;
    }
    s->len += (size_t)r;
    flush_lines(s, 0);
}

static int open_fifo(const char *name, int *dummy_writer)
{
    char path[PATH_MAX];
    fmt(path, sizeof path, "%s/%s", opt.state, name);
    unlink(path);
    if (mkfifo(path, 0600) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    /* Holding a writer ourselves keeps reads from seeing EOF between clients. */
    if (fd >= 0 && dummy_writer)
        *dummy_writer = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    return fd;
}

static void apply_resize(int fifo, int master, char *buf, size_t *len)
{
    ssize_t r = read(fifo, buf + *len, 255 - *len);
    if (r <= 0)
        return;
    *len += (size_t)r;
    buf[*len] = '\0';
    char *nl;
    while ((nl = strchr(buf, '\n'))) {
        *nl = '\0';
        unsigned cols, rows;
        if (sscanf(buf, "%u %u", &cols, &rows) == 2) {
            struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
            ioctl(master, TIOCSWINSZ, &ws);
        }
        size_t rest = *len - (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, rest + 1);
        *len = rest;
    }
    if (*len >= 255)
        *len = 0;
}

static void write_exit(int status, long long started, long long finished, const char *error)
{
    int code = 0, sig = 0;
    if (error)
        code = 128;
    else if (WIFSIGNALED(status)) {
        sig = WTERMSIG(status);
        code = 128 + sig;
    } else
        code = WEXITSTATUS(status);
    char content[MSG_SIZE + 256];
    int n = fmt(content, sizeof content, "exit_code=%d\nsignal=%d\nstarted=%lld\nfinished=%lld\n",
                     code, sig, started, finished);
    if (error) {
        char clean[MSG_SIZE];
        fmt(clean, sizeof clean, "%s", error);
        for (char *c = clean; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
        fmt(content + n, sizeof content - (size_t)n, "error=%s\n", clean);
    }
    write_state_file("exit", content);
}

static void report(const char *fmt, ...)
{
    char line[MSG_SIZE + 16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    write_all(1, line, strlen(line));
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    dup2(devnull, 0);
    dup2(devnull, 1); /* the starter sees EOF: start is decided */
    dup2(devnull, 2);
    close(devnull);
}

/* Kill and reap what is left of the container once its main process is gone: processes
 * of its group, and orphans reparented to us (we are a subreaper). In a pid namespace the
 * kernel has done this already. */
static void kill_leftovers(pid_t pgid)
{
    kill(-pgid, SIGKILL);
    char path[64], buf[4096];
    fmt(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t r = read(fd, buf, sizeof buf - 1);
        close(fd);
        buf[r > 0 ? r : 0] = '\0';
        for (char *p = buf, *end; *p; p = end) {
            long pid = strtol(p, &end, 10);
            if (end == p)
                break;
            if (pid > 0)
                kill((pid_t)pid, SIGKILL);
        }
    }
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

struct io {
    struct stream out, err;
    int master, in_fifo, in_dummy, resize_fifo, resize_dummy, child_in;
    char pending[65536];
    size_t pending_len, resize_len;
    char resize_buf[256];
};

static void stdin_eof(struct io *io)
{
    close(io->in_fifo);
    io->in_fifo = -1;
    if (io->master >= 0) {
        char eot = 4; /* ^D: end of input on a terminal */
        write_all(io->master, &eot, 1);
    } else if (io->child_in >= 0) {
        close(io->child_in);
        io->child_in = -1;
    }
}

static void copy_stdin(struct io *io, short fifo_events, short child_events)
{
    int target = io->master >= 0 ? io->master : io->child_in;
    if (io->pending_len == 0 && (fifo_events & (POLLIN | POLLHUP))) {
        ssize_t r = read(io->in_fifo, io->pending, sizeof io->pending);
        if (r > 0)
            io->pending_len = (size_t)r;
        else if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            stdin_eof(io); /* only --stdin-once gets here: otherwise we hold a writer */
    }
    if (io->pending_len && target >= 0 && (child_events & POLLOUT || io->master >= 0)) {
        ssize_t w = write(target, io->pending, io->pending_len);
        if (w > 0) {
            memmove(io->pending, io->pending + w, io->pending_len - (size_t)w);
            io->pending_len -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR)
            io->pending_len = 0; /* the container closed its stdin: drop input */
    }
}

static int handle_signals(int sigfd, pid_t child, int *status, int *exited)
{
    struct signalfd_siginfo si;
    while (read(sigfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            if (!*exited)
                kill(-child, (int)si.ssi_signo);
            continue;
        }
    }
    int st;
    pid_t p;
    int changed = 0;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        if (p == child) {
            *status = st;
            *exited = 1;
            changed = 1;
        }
    }
    return changed;
}

static void event_loop(struct io *io, int sigfd, pid_t child, long long started)
{
    int status = 0, exited = 0;
    long long finished = 0, drain_until = 0;
    struct pollfd pfd[6];
    for (;;) {
        int n = 0;
        int i_sig = n, i_out = -1, i_err = -1, i_in = -1, i_child = -1, i_rs = -1;
        pfd[n++] = (struct pollfd){sigfd, POLLIN, 0};
        if (io->out.fd >= 0) { i_out = n; pfd[n++] = (struct pollfd){io->out.fd, POLLIN, 0}; }
        if (io->err.fd >= 0) { i_err = n; pfd[n++] = (struct pollfd){io->err.fd, POLLIN, 0}; }
        if (!exited && io->in_fifo >= 0 && io->pending_len == 0) { i_in = n; pfd[n++] = (struct pollfd){io->in_fifo, POLLIN, 0}; }
        if (!exited && io->pending_len && io->child_in >= 0) { i_child = n; pfd[n++] = (struct pollfd){io->child_in, POLLOUT, 0}; }
        if (!exited && io->resize_fifo >= 0) { i_rs = n; pfd[n++] = (struct pollfd){io->resize_fifo, POLLIN, 0}; }
        if (exited && (n == 1 || now_ns() / 1000000 >= drain_until))
            break;
        int timeout = exited ? (int)(drain_until - now_ns() / 1000000) : -1;
        if (io->pending_len && io->master >= 0)
            timeout = 10; /* a full pty buffer: retry shortly */
        if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
            break;
        if (pfd[i_sig].revents && handle_signals(sigfd, child, &status, &exited)) {
            finished = now_ns();
            drain_until = finished / 1000000 + DRAIN_MS;
            if (!(opt.unshare_flags & CLONE_NEWPID))
                kill(-child, SIGKILL);
        }
        if (i_out >= 0 && pfd[i_out].revents)
            read_stream(&io->out);
        if (i_err >= 0 && pfd[i_err].revents)
            read_stream(&io->err);
        if (io->pending_len || (i_in >= 0 && pfd[i_in].revents))
            copy_stdin(io, i_in >= 0 ? pfd[i_in].revents : 0, i_child >= 0 ? pfd[i_child].revents : 0);
        if (i_rs >= 0 && pfd[i_rs].revents)
            apply_resize(io->resize_fifo, io->master, io->resize_buf, &io->resize_len);
    }
    if (io->out.fd >= 0) flush_lines(&io->out, 1);
    if (io->err.fd >= 0) flush_lines(&io->err, 1);
    kill_leftovers(child);
    write_exit(status, started, finished, NULL);
}

static void fail_start(const char *msg)
{
    write_exit(0, 0, now_ns(), msg);
    report("error %s\n", msg);
    exit(0);
}

static int make_pipe(int fds[2])
{
    return pipe2(fds, O_CLOEXEC);
}

/* Put the container's pid into each cgroup; an error message or NULL. */
static const char *join_cgroups(pid_t pid)
{
    static char msg[MSG_SIZE];
    for (int i = 0; i < opt.ncgroups; i++) {
        char path[PATH_MAX], val[32];
        fmt(path, sizeof path, "%s/cgroup.procs", opt.cgroups[i]);
        fmt(val, sizeof val, "%d", (int)pid);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write_all(fd, val, strlen(val)) < 0) {
            fmt(msg, sizeof msg, "failed to write %d to %s: %s", (int)pid, path, go_strerror(errno));
            if (fd >= 0)
                close(fd);
            return msg;
        }
        close(fd);
    }
    return NULL;
}

static void run(void)
{
    struct io io = {.out = {.fd = -1, .name = "stdout"}, .err = {.fd = -1, .name = "stderr"},
                    .master = -1, .in_fifo = -1, .in_dummy = -1, .resize_fifo = -1,
                    .resize_dummy = -1, .child_in = -1};
    char msg[MSG_SIZE];
    char pidbuf[32];
    fmt(pidbuf, sizeof pidbuf, "%d\n", (int)getpid());
    if (write_state_file("shim.pid", pidbuf) < 0) {
        fmt(msg, sizeof msg, "write %s/shim.pid: %s", opt.state, go_strerror(errno));
        fail_start(msg);
    }
    log_fd = open(opt.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (log_fd < 0) {
        fmt(msg, sizeof msg, "open log %s: %s", opt.log, go_strerror(errno));
        fail_start(msg);
    }
    int in_r = -1, out_w = -1, err_w = -1, fds[2];
    const char *slave = NULL;
    if (opt.tty) {
        io.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (io.master < 0 || grantpt(io.master) < 0 || unlockpt(io.master) < 0 || !(slave = ptsname(io.master)))
            fail_start("could not allocate a pty");
        struct winsize ws = {.ws_row = 24, .ws_col = 80};
        ioctl(io.master, TIOCSWINSZ, &ws);
        fcntl(io.master, F_SETFL, O_NONBLOCK);
        io.out.fd = io.master;
        io.resize_fifo = open_fifo("resize", &io.resize_dummy);
    } else {
        if (make_pipe(fds) < 0) fail_start("pipe failed");
        io.out.fd = fds[0]; out_w = fds[1];
        if (make_pipe(fds) < 0) fail_start("pipe failed");
        io.err.fd = fds[0]; err_w = fds[1];
        if (opt.stdin_) {
            if (make_pipe(fds) < 0) fail_start("pipe failed");
            in_r = fds[0]; io.child_in = fds[1];
            fcntl(io.child_in, F_SETFL, O_NONBLOCK);
        } else
            in_r = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (opt.stdin_) {
        io.in_fifo = open_fifo("stdin", opt.stdin_once ? NULL : &io.in_dummy);
        if (io.in_fifo < 0) {
            fmt(msg, sizeof msg, "create %s/stdin: %s", opt.state, go_strerror(errno));
            fail_start(msg);
        }
    }
    int sync[2], errp[2];
    if (make_pipe(sync) < 0 || make_pipe(errp) < 0)
        fail_start("pipe failed");
    if ((opt.unshare_flags & CLONE_NEWPID) && unshare(CLONE_NEWPID) < 0) {
        fmt(msg, sizeof msg, "unshare pid namespace: %s", go_strerror(errno));
        fail_start(msg);
    }
    pid_t child = fork();
    if (child < 0)
        fail_start("fork failed");
    if (child == 0) {
        shim_pid = (opt.unshare_flags & CLONE_NEWPID) ? 0 : getppid();
        close(sync[1]);
        close(errp[0]);
        err_fd = errp[1];
        child_main(sync[0], in_r, out_w, err_w, slave);
    }
    close(sync[0]);
    close(errp[1]);
    if (out_w >= 0) close(out_w);
    if (err_w >= 0) close(err_w);
    if (in_r >= 0) close(in_r);
    const char *cg_err = join_cgroups(child);
    if (cg_err) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        fail_start(cg_err);
    }
    long long started = now_ns();
    close(sync[1]); /* go */
    size_t mlen = 0;
    ssize_t r;
    while ((r = read(errp[0], msg + mlen, sizeof msg - 1 - mlen)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        mlen += (size_t)r;
        if (mlen == sizeof msg - 1)
            break;
    }
    close(errp[0]);
    msg[mlen] = '\0';
    if (mlen) {
        waitpid(child, NULL, 0);
        fail_start(msg);
    }
    fmt(pidbuf, sizeof pidbuf, "%d\n", (int)child);
    write_state_file("pid", pidbuf);
    report("ok %d\n", (int)child);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    int sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    event_loop(&io, sigfd, child, started);
}

int main(int argc, char **argv)
{
    /* fds 0-2 must exist, or the first files opened would take their numbers. */
    int fd;
    while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
        ;
    if (fd > 2)
        close(fd);
    parse_args(argc, argv);
    opt.envp = opt.env_file ? read_env_file(opt.env_file) : environ;
    struct stat st;
    if (stat(opt.state, &st) < 0 || !S_ISDIR(st.st_mode))
        die_usage("--state %s: not a directory", opt.state);
    /* Block before forking so no SIGCHLD/SIGTERM is lost before the signalfd exists. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = fork();
    if (pid < 0)
        die_usage("fork: %s", strerror(errno));
    if (pid > 0)
        _exit(0); /* the starter returns; the shim lives on, reparented */
    setsid();
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (chdir("/") < 0)
        die_usage("chdir /: %s", strerror(errno));
    run();
    return 0;
}
