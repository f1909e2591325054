package venvpack

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// activateSh is sourced by bash, zsh or ksh. It computes VIRTUAL_ENV from
// its own location so that the archive works wherever it is unpacked. A
// POSIX sh that does not tell a sourced file its path (dash) gets an
// explanation instead of a wrong environment.
const activateSh = `# Source this file from bash or zsh: "source bin/activate".
# It finds the environment from its own location, wherever it was unpacked.

deactivate () {
    if [ -n "${_OLD_VIRTUAL_PATH:-}" ]; then
        PATH="${_OLD_VIRTUAL_PATH}"
        export PATH
        unset _OLD_VIRTUAL_PATH
    fi
    if [ -n "${_OLD_VIRTUAL_PYTHONHOME:-}" ]; then
        PYTHONHOME="${_OLD_VIRTUAL_PYTHONHOME}"
        export PYTHONHOME
        unset _OLD_VIRTUAL_PYTHONHOME
    fi
    if [ -n "${_OLD_VIRTUAL_PS1+set}" ]; then
        PS1="${_OLD_VIRTUAL_PS1}"
        export PS1
        unset _OLD_VIRTUAL_PS1
    fi
    unset VIRTUAL_ENV
    unset VIRTUAL_ENV_PROMPT
    hash -r 2>/dev/null
    if [ "${1:-}" != "nondestructive" ]; then
        unset -f deactivate
    fi
}

deactivate nondestructive

_venv_src=""
if [ -n "${BASH_SOURCE:-}" ]; then
    _venv_src="${BASH_SOURCE}"
elif [ -n "${ZSH_VERSION:-}" ]; then
    eval '_venv_src="${(%):-%x}"'
elif [ -n "${KSH_VERSION:-}" ]; then
    eval '_venv_src="${.sh.file}"'
fi
if [ -z "${_venv_src}" ]; then
    echo "bin/activate: this shell does not tell a sourced file its path; use bash or zsh, or set PATH to <environment>/bin yourself" >&2
    unset _venv_src
    return 1 2>/dev/null || exit 1
fi
VIRTUAL_ENV="$(cd "$(dirname -- "${_venv_src}")/.." && pwd -P)"
unset _venv_src
export VIRTUAL_ENV
VIRTUAL_ENV_PROMPT="@@PROMPT@@"
export VIRTUAL_ENV_PROMPT

_OLD_VIRTUAL_PATH="${PATH}"
PATH="${VIRTUAL_ENV}/bin:${PATH}"
export PATH

if [ -n "${PYTHONHOME:-}" ]; then
    _OLD_VIRTUAL_PYTHONHOME="${PYTHONHOME}"
    unset PYTHONHOME
fi

if [ -z "${VIRTUAL_ENV_DISABLE_PROMPT:-}" ]; then
    _OLD_VIRTUAL_PS1="${PS1:-}"
    PS1="(${VIRTUAL_ENV_PROMPT}) ${PS1:-}"
    export PS1
fi

hash -r 2>/dev/null
`

// activateFish is sourced by fish ("source bin/activate.fish").
const activateFish = `# Source this file from fish: "source bin/activate.fish".
# It finds the environment from its own location, wherever it was unpacked.

function deactivate -d "Leave the environment"
    if set -q _OLD_VIRTUAL_PATH
        set -gx PATH $_OLD_VIRTUAL_PATH
        set -e _OLD_VIRTUAL_PATH
    end
    if set -q _OLD_VIRTUAL_PYTHONHOME
        set -gx PYTHONHOME $_OLD_VIRTUAL_PYTHONHOME
        set -e _OLD_VIRTUAL_PYTHONHOME
    end
    set -e VIRTUAL_ENV
    set -e VIRTUAL_ENV_PROMPT
    if test "$argv[1]" != "nondestructive"
        functions -e deactivate
    end
end

deactivate nondestructive

set -gx VIRTUAL_ENV (builtin realpath (dirname (status --current-filename))/..)
set -gx VIRTUAL_ENV_PROMPT "@@PROMPT@@"
set -gx _OLD_VIRTUAL_PATH $PATH
set -gx PATH "$VIRTUAL_ENV/bin" $PATH
if set -q PYTHONHOME
    set -gx _OLD_VIRTUAL_PYTHONHOME $PYTHONHOME
    set -e PYTHONHOME
end
`

func activate(tmpl, prompt string) []byte {
	return []byte(strings.ReplaceAll(tmpl, "@@PROMPT@@", prompt))
}

// placeholderPython is the interpreter wheels are installed for. It is an
// absolute path no node has; every script that names it is rewritten into
// a trampoline that runs the python beside the script.
const placeholderPython = "/sparkenv-venv-placeholder/bin/python"

// relocateScript rewrites a script whose first line runs placeholderPython
// into a sh/Python polyglot: sh runs the python in the script's own
// directory (bin/ of wherever the archive was unpacked), Python sees the
// sh line as a string. Other files are returned unchanged, with false.
func relocateScript(data []byte) ([]byte, bool, error) {
	prefix := []byte("#!" + placeholderPython)
	if !bytes.HasPrefix(data, prefix) {
		return data, false, nil
	}
	line, rest, _ := bytes.Cut(data, []byte("\n"))
	tail := string(line[len(prefix):])
	if tail != "" && tail[0] != ' ' && tail[0] != '\t' {
		return data, false, nil // "#!/…/python3": not ours
	}
	args := strings.Fields(tail)
	for _, a := range args {
		if !safeArg.MatchString(a) {
			return nil, false, fmt.Errorf("script interpreter option %q cannot be carried into a relocatable launcher", a)
		}
	}
	var b bytes.Buffer
	b.WriteString(`#!/bin/sh` + "\n" + `'''exec' "$(dirname -- "$0")/python"`)
	for _, a := range args {
		b.WriteString(" " + a)
	}
	b.WriteString(` "$0" "$@"` + "\n" + `' '''` + "\n")
	b.Write(rest)
	return b.Bytes(), true, nil
}

// safeArg is what an interpreter option may hold to be written unquoted in
// both sh and the Python string that the launcher's first lines are.
var safeArg = regexp.MustCompile(`^[A-Za-z0-9_.=:,+-]+$`)

const readme = `This archive is a Python virtual environment written by sparkenv for target %s.

Interpreter: %s
%s
Use it with Spark:
  spark-submit --archives %s#environment \
    --conf spark.pyspark.python=./environment/bin/python ...
(on YARN cluster mode also spark.yarn.appMasterEnv.PYSPARK_PYTHON=./environment/bin/python).

On a shell: source bin/activate (bash or zsh) from wherever the archive is unpacked.
Console scripts in bin/ run the python beside them, so they work from any directory.
`

const readmeLinked = `bin/python, bin/python%[2]s and bin/python%[3]s are symbolic links to %[1]s
(Python %[4]s). THIS ARCHIVE ONLY WORKS WHERE %[1]s EXISTS:
every Spark node (driver and executors) needs that interpreter at that exact path, with the
same major.minor version. If it is absent, bin/python is a dangling link and Python workers fail
to start ("No such file or directory" / "Cannot run program ./environment/bin/python").
`

const readmeCopies = `The interpreter is copied into this archive from the environment's conda python %[1]s:
bin/python%[2]s, the shared libraries of lib/ (libpython and what the standard library's
extension modules load) and the standard library lib/python%[2]s. It needs no Python on the
nodes, only a compatible C library (the one the conda python was built for).
`
