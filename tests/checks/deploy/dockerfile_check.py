#!/usr/bin/python3
"""Checks of the Dockerfile that need no Docker engine.

Usage: dockerfile_check.py DOCKERFILE DEPLOYMENT_YAML [BUILD_DIR]

Reads the Dockerfile (stages, base images, packages, user, healthcheck) and,
when BUILD_DIR holds the built binaries, compares the runtime stage's
package list with what the binaries actually link.

The package rule (see the comment in ldd_check) is:
  runtime packages minus declared non-library packages
    == the Debian packages owning the libraries the binaries link directly
       (their DT_NEEDED entries), minus libc6 which the base image provides;
  and every library ldd resolves, directly or transitively, belongs to a
  package in the Depends/Pre-Depends closure of that list plus libc6.
"""
import os
import re
import shlex
import subprocess
import sys

import yaml

# Packages in the runtime stage that are not shared libraries, with the reason.
NON_LIBRARY = {
    "ca-certificates": "CA bundle for Key Vault/IMDS over HTTPS (libcurl) and PAYTRACKR_DB_SSLROOTCERT (libpq)",
}
BUILD_DEPS = ["meson", "ninja-build", "pkg-config", "gcc", "libwebsockets-dev", "libpq-dev", "libcjson-dev",
              "libcurl4-openssl-dev", "libssl-dev", "libncurses-dev", "python3"]
FORBIDDEN_RUNTIME = re.compile(r"^(gcc|g\+\+|clang|cc|make|meson|ninja-build|build-essential|curl|wget|.*-dev|"
                               r"procps|vim.*|nano|less|netcat.*|iputils.*|dnsutils|git|python3.*|perl)$")
BINARIES = ("server/paytrackr-server", "tui/paytrackr-tui")

out = []


def check(cond, what, problems=()):
    out.append(("ok - " if cond else "not ok - ") + what)
    if not cond:
        out.extend("# " + str(p) for p in problems)


def parse_dockerfile(path):
    """Instructions as (KEYWORD, text) with continuations joined, comments dropped."""
    lines, buf = [], ""
    for raw in open(path, encoding="utf-8"):
        s = raw.rstrip("\n")
        if s.strip().startswith("#") and not buf.strip():
            continue
        if s.strip().startswith("#"):
            continue  # comment line inside a continuation
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        if buf.strip():
            kw, _, rest = buf.strip().partition(" ")
            lines.append((kw.upper(), rest.strip()))
        buf = ""
    return lines


def apt_packages(run_text):
    pkgs = []
    for cmd in re.split(r"&&|;", run_text):
        words = shlex.split(cmd)
        if len(words) >= 2 and words[0] in ("apt-get", "apt") and "install" in words:
            pkgs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return pkgs


def static_checks(dockerfile, deployment):
    ins = parse_dockerfile(dockerfile)
    args = {}
    stages = []
    for kw, rest in ins:
        if kw == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        if kw == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), rest.split()[0])
            name = rest.split()[-1] if " AS " in rest.upper() else ""
            stages.append({"image": image, "name": name, "ins": []})
        elif stages:
            stages[-1]["ins"].append((kw, rest))

    check(len(stages) >= 2, "multi-stage build", [f"{len(stages)} stage(s)"])
    if len(stages) < 2:
        return None
    build, runtime = stages[0], stages[-1]
    pin = re.compile(r"^debian:(12\.\d+|bookworm-\d{8})(-slim)?(@sha256:[0-9a-f]{64})?$|^debian@sha256:[0-9a-f]{64}$")
    problems = [f"{s['name'] or 'stage'}: {s['image']}" for s in stages if not pin.match(s["image"])]
    check(not problems, "base images are Debian 12 pinned to a point release or digest, never latest", problems)
    check(runtime["image"].split("@")[0].endswith("-slim"), "runtime stage is a slim Debian 12 image", [runtime["image"]])

    build_runs = " ".join(r for k, r in build["ins"] if k == "RUN")
    missing = [p for p in BUILD_DEPS if p not in apt_packages(build_runs)]
    check(not missing and "meson setup" in build_runs and "meson compile" in build_runs,
          "build stage installs the build dependencies and builds with meson", missing)

    runs = [r for k, r in runtime["ins"] if k == "RUN"]
    rt_pkgs = [p for r in runs for p in apt_packages(r)]
    bad = [p for p in rt_pkgs if FORBIDDEN_RUNTIME.match(p)]
    installs = [r for r in runs if apt_packages(r)]
    problems = [f"forbidden in runtime: {p}" for p in bad]
    problems += ["apt-get install without --no-install-recommends" for r in installs if "--no-install-recommends" not in r]
    problems += ["apt lists not removed" for r in installs if "rm -rf /var/lib/apt/lists" not in r]
    check(rt_pkgs and not problems, "runtime stage installs no compilers, -dev packages or shell tools, without recommends, cleaning apt lists", problems)

    copies = " ".join(r for k, r in runtime["ins"] if k == "COPY")
    built = build_runs
    check("--from=" in copies and all(b.rsplit("/", 1)[-1] in built for b in BINARIES),
          "runtime copies paytrackr-server and paytrackr-tui from the build stage")

    users = [r for k, r in runtime["ins"] if k == "USER"]
    uid = users[-1].split(":")[0] if users else ""
    pod = yaml.safe_load(open(deployment, encoding="utf-8"))["spec"]["template"]["spec"]
    want = str(pod.get("securityContext", {}).get("runAsUser"))
    check(uid.isdigit() and uid != "0" and uid == want,
          f"runs as a numeric non-root USER matching the Deployment's runAsUser ({want})", [f"USER {users}"])

    hc = [r for k, r in runtime["ins"] if k == "HEALTHCHECK"]
    check(len(hc) == 1 and re.search(r'CMD \["[^"]*paytrackr-server", "healthcheck"\]', hc[0]) and not re.search(r"curl|wget", hc[0]),
          "HEALTHCHECK runs `paytrackr-server healthcheck` (exec form, no curl)", hc)

    entry = [r for k, r in runtime["ins"] if k == "ENTRYPOINT"]
    cmd = [r for k, r in runtime["ins"] if k == "CMD"]
    check(not entry and cmd and "paytrackr-server" in cmd[-1],
          "no ENTRYPOINT and CMD paytrackr-server, so `docker run IMAGE paytrackr-tui` runs the TUI", entry + cmd)

    exposed = " ".join(r for k, r in runtime["ins"] if k == "EXPOSE").split()
    check(sorted(exposed) == ["8080", "9090"], "EXPOSE 8080 (public) and 9090 (admin)", exposed)
    return rt_pkgs


def owner(path):
    """Debian package owning a library path (tries the merged-/usr spellings)."""
    cands = [path, os.path.realpath(path)]
    for p in list(cands):
        if p.startswith("/usr/lib/"):
            cands.append(p[len("/usr"):])
        elif p.startswith("/lib/"):
            cands.append("/usr" + p)
    for p in cands:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True, check=False)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def depends_closure(pkgs):
    """Depends/Pre-Depends closure over the installed packages (first alternative that is installed)."""
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", p], capture_output=True, text=True, check=False)
        if r.returncode != 0:
            continue
        for dep in r.stdout.split(","):
            for alt in dep.split("|"):
                name = alt.strip().split(" ")[0].split(":")[0]
                if not name:
                    continue
                q = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True, check=False)
                if q.returncode == 0 and "installed" in q.stdout:
                    todo.append(name)
                    break
    return seen


def ldd_check(build_dir, rt_pkgs):
    # Rule, and why: the image names exactly the packages that own the
    # libraries our binaries link directly (DT_NEEDED). Those are the
    # project's own choices and must be there by name. Libraries that those
    # libraries pull in (libcurl's nghttp2, libpq's GSSAPI, ...) are Debian's
    # business and arrive through apt's dependencies; listing them would copy
    # another package's internals into our Dockerfile. libc6 (and what it
    # depends on) is in every Debian base image. So: listed == direct - libc6,
    # and everything ldd resolves lies in the dependency closure of the list.
    bins = [os.path.join(build_dir, b) for b in BINARIES]
    what = "runtime packages are exactly the owners of the libraries the binaries link (ldd + dpkg -S)"
    if not all(os.access(b, os.X_OK) for b in bins):
        out.append(f"skip - {what} # no built binaries in PAYTRACKR_BUILD_DIR")
        return
    direct, every, problems = set(), set(), []
    for b in bins:
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                            subprocess.run(["readelf", "-d", b], capture_output=True, text=True, check=True).stdout)
        ldd = subprocess.run(["ldd", b], capture_output=True, text=True, check=False).stdout
        resolved = {}
        for line in ldd.splitlines():
            m = re.match(r"\s*(\S+) => (\S+)", line)
            if m:
                if m.group(2) == "not":
                    problems.append(f"{os.path.basename(b)}: {m.group(1)} not found")
                else:
                    resolved[m.group(1)] = m.group(2)
        for soname, path in resolved.items():
            pkg = owner(path)
            if pkg is None:
                problems.append(f"{path} belongs to no Debian package")
                continue
            every.add(pkg)
            if soname in needed:
                direct.add(pkg)
    # A sanitizer build (the test suite's build-asan) also links the
    # sanitizer runtimes; the image is built without them (release).
    sanitizer = {p for p in direct if re.match(r"^lib(asan|ubsan|lsan|tsan|hwasan)\d*$", p)}
    if sanitizer:
        out.append("# sanitizer build: ignoring " + " ".join(sorted(sanitizer)))
        direct -= sanitizer
    listed = set(rt_pkgs) - set(NON_LIBRARY)
    want = direct - {"libc6"}
    problems += [f"linked but not installed: {p}" for p in sorted(want - listed)]
    problems += [f"installed but not linked directly: {p}" for p in sorted(listed - want)]
    closure = depends_closure(listed | {"libc6"} | sanitizer)
    problems += [f"loaded but not pulled in by the list: {p}" for p in sorted(every - closure)]
    check(not problems, what, problems)
    out.append("# direct: " + " ".join(sorted(direct)))
    out.append("# transitive (via apt dependencies): " + " ".join(sorted(every - direct)))


def main():
    dockerfile, deployment = sys.argv[1], sys.argv[2]
    build_dir = sys.argv[3] if len(sys.argv) > 3 else ""
    rt_pkgs = static_checks(dockerfile, deployment)
    if rt_pkgs is not None:
        if build_dir:
            ldd_check(build_dir, rt_pkgs)
        else:
            out.append("skip - runtime packages are exactly the owners of the libraries the binaries link (ldd + dpkg -S) # PAYTRACKR_BUILD_DIR unset")
    print("\n".join(out))


if __name__ == "__main__":
    main()
