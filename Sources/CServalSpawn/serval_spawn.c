#define _GNU_SOURCE
#include "serval_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/// Closes every descriptor from `low` up, except `keep`. Only async-signal-safe calls: this runs between fork
/// and exec in a multithreaded parent.
static void close_from(int low, int keep) {
#ifdef SYS_close_range
    int ok = 1;
    if (keep >= low) {
        if (keep > low && syscall(SYS_close_range, (unsigned)low, (unsigned)(keep - 1), 0) != 0) ok = 0;
        if (ok && syscall(SYS_close_range, (unsigned)(keep + 1), ~0U, 0) != 0) ok = 0;
    } else if (syscall(SYS_close_range, (unsigned)low, ~0U, 0) != 0) {
        ok = 0;
    }
    if (ok) return;
#endif
    struct rlimit limit;
    int highest = 65536;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < 1048576) {
        highest = (int)limit.rlim_cur;
    }
    for (int fd = low; fd < highest; fd++) {
        if (fd != keep) close(fd);
    }
}

/// Reports a failed step to the parent through the error pipe and ends the child.
static void fail(int report_fd, int step) {
    int message[2] = {step, errno};
    ssize_t ignored = write(report_fd, message, sizeof message);
    (void)ignored;
    _exit(127);
}

int serval_spawn(const serval_spawn_request *request, pid_t *pid, int *failed_step) {
    *failed_step = SERVAL_SPAWN_STEP_NONE;
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        *failed_step = SERVAL_SPAWN_STEP_FORK;
        return errno;
    }
    // Keep the report pipe's write end above the descriptors the child moves onto 0-3.
    if (report[1] < 10) {
        int moved = fcntl(report[1], F_DUPFD_CLOEXEC, 10);
        if (moved < 0) {
            int error = errno;
            close(report[0]);
            close(report[1]);
            *failed_step = SERVAL_SPAWN_STEP_FORK;
            return error;
        }
        close(report[1]);
        report[1] = moved;
    }
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        *failed_step = SERVAL_SPAWN_STEP_FORK;
        return error;
    }
    if (child == 0) {
        // Default dispositions and an empty mask: the parent's handlers and blocked signals are not the child's.
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = SIG_DFL;
        for (int signal_number = 1; signal_number < NSIG; signal_number++) {
            if (signal_number != SIGKILL && signal_number != SIGSTOP) sigaction(signal_number, &action, NULL);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);

        int input = open("/dev/null", O_RDONLY);
        if (input < 0 || dup2(input, 0) < 0) fail(report[1], SERVAL_SPAWN_STEP_DESCRIPTORS);
        if (dup2(request->output_fd, 1) < 0 || dup2(request->output_fd, 2) < 0) {
            fail(report[1], SERVAL_SPAWN_STEP_DESCRIPTORS);
        }
        if (request->channel_fd >= 0 && dup2(request->channel_fd, 3) < 0) fail(report[1], SERVAL_SPAWN_STEP_DESCRIPTORS);
        close_from(request->channel_fd >= 0 ? 4 : 3, report[1]);

        if (request->set_user) {
            // Raw system calls: the child has one thread, and glibc's wrappers would try to change the
            // credentials of the parent's other threads, which the child does not have.
            gid_t groups[1] = {request->gid};
            if (syscall(SYS_setgroups, 1, groups) != 0 ||
                syscall(SYS_setresgid, request->gid, request->gid, request->gid) != 0 ||
                syscall(SYS_setresuid, request->uid, request->uid, request->uid) != 0) {
                fail(report[1], SERVAL_SPAWN_STEP_USER);
            }
            if (request->uid != 0 && syscall(SYS_setresuid, 0, 0, 0) == 0) {  // Dropping root must be irreversible.
                errno = EPERM;
                fail(report[1], SERVAL_SPAWN_STEP_USER);
            }
        }
        // After the change of user, which clears it. The parent may have died before the call: then the child
        // has been re-parented and must not run on.
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(report[1], SERVAL_SPAWN_STEP_PARENT_DEATH);
        if (getppid() != parent) _exit(127);
        if (request->directory != NULL && chdir(request->directory) != 0) fail(report[1], SERVAL_SPAWN_STEP_DIRECTORY);
        execve(request->path, request->argv, request->envp);
        fail(report[1], SERVAL_SPAWN_STEP_EXEC);
    }
    close(report[1]);
    int message[2] = {0, 0};
    ssize_t count;
    do {
        count = read(report[0], message, sizeof message);
    } while (count < 0 && errno == EINTR);
    close(report[0]);
    if (count == (ssize_t)sizeof message) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        *failed_step = message[0];
        return message[1] != 0 ? message[1] : EIO;
    }
    *pid = child;
    return 0;
}

int serval_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}
