#ifndef SERVAL_SPAWN_H
#define SERVAL_SPAWN_H

#include <sys/types.h>
#include <sys/xattr.h>

/// What a child process starts with. Descriptors the child keeps must be numbered 10 or above in the parent, so
/// that moving them onto 0-3 never overwrites one another.
typedef struct serval_spawn_request {
    /// The program's absolute path (the caller searches PATH).
    const char *path;
    /// NULL-terminated arguments, the first being the program's name.
    char *const *argv;
    /// NULL-terminated "NAME=value" strings: the child's whole environment.
    char *const *envp;
    /// The child's working directory, or NULL to keep the parent's.
    const char *directory;
    /// Becomes the child's stdout and stderr.
    int output_fd;
    /// Becomes the child's fd 3, or -1 for none.
    int channel_fd;
    /// When nonzero, the child drops to `uid`/`gid` (with `gid` as its only supplementary group) before exec.
    int set_user;
    uid_t uid;
    gid_t gid;
} serval_spawn_request;

/// The step of the child's preparation that failed, for the error message.
enum serval_spawn_step {
    SERVAL_SPAWN_STEP_NONE = 0,
    SERVAL_SPAWN_STEP_FORK,
    SERVAL_SPAWN_STEP_DESCRIPTORS,
    SERVAL_SPAWN_STEP_USER,
    SERVAL_SPAWN_STEP_PARENT_DEATH,
    SERVAL_SPAWN_STEP_DIRECTORY,
    SERVAL_SPAWN_STEP_EXEC,
};

/// Starts a child that holds only stdin (/dev/null), stdout and stderr (`output_fd`) and, optionally, fd 3
/// (`channel_fd`): every other descriptor of the parent is closed, whether or not it is close-on-exec. The child
/// leads a process group of its own, has default signal dispositions and an empty signal mask, runs as the
/// requested user, and is killed (SIGKILL) when the thread that started it ends — call this from a thread that
/// lives as long as the process.
///
/// Returns 0 and sets `*pid`, or returns the errno of the step that failed and sets `*failed_step`.
int serval_spawn(const serval_spawn_request *request, pid_t *pid, int *failed_step);

/// pipe2(fds, O_CLOEXEC), which Swift's Glibc module does not show.
int serval_pipe_cloexec(int fds[2]);

#endif
