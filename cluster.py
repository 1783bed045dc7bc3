"""Work on a Ray cluster (optional: pip install '.[ray]').

`connect()` starts a local Ray for the run or joins a cluster. `run_tasks()` runs independent
jobs (batch.py's pairs) as Ray tasks: each is sent its input files' bytes and returns its result
to the driver, so workers need no shared file system. `TileWorkers` are Ray actors that hold the
network and optimise the tiles of a colour group (tiles.py) at the same time; the driver blends
them. Ray retries a task whose worker died; Ctrl-C on the driver cancels what is running.

Ray, TensorFlow and the network code are imported where they are used: the driver of a batch on
Ray needs neither TensorFlow nor the network, and Ray is an optional extra.
"""
import atexit
import os
import secrets
import shutil
import signal
import tempfile

from errors import Interrupted, NumericalError, Stopped, ToolError, raise_interrupted

ROOT = os.path.dirname(os.path.abspath(__file__))
RETRIES = 3  # Ray re-runs a task (or restarts an actor) whose worker process died, this many times
THREADS_ENV = "NEURAL_STYLE_THREADS"


def _ray():
    try:
        import ray
    except ImportError:
        raise ToolError("--ray needs Ray: pip install '.[ray]' (or pip install -r requirements-ray.txt)") from None
    return ray


def connect(address, cpus_per_task, log=print):
    """Start a local Ray (address 'local') or join a cluster ('auto', host:port, ray://...)."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    env = {"env_vars": {THREADS_ENV: str(cpus_per_task), "TF_CPP_MIN_LOG_LEVEL": "3"}}
    if os.path.isfile(os.path.join(ROOT, "pyproject.toml")):  # a source checkout: ship its code to the workers
        env.update(working_dir=ROOT, excludes=[".git", ".venv", "venv", "__pycache__", "tests", "benchmarks",
                                               "examples", "*.jpg", "*.png", "*.mat"])  # not the 534 MB VGG file
    kwargs = dict(runtime_env=env, include_dashboard=False, configure_logging=False, log_to_driver=False)
    if address == "local":
        kwargs.update(_own_local_ray())
    elif not address.startswith("ray://"):  # Ray Client's server authenticates on its own
        _authenticate_as_the_cluster_asks(address)
    try:
        ray.init(address=address, **kwargs)
    except Exception as e:  # Ray's failures to start or connect come in many types
        raise ToolError(f"cannot start or join Ray at {address}: {e}") from None
    # ray.init installs its own SIGTERM handler; ours raises Interrupted, which cancels the tasks.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, raise_interrupted)
    cpus = ray.cluster_resources().get("CPU", 0)
    log(f"Ray: {'a local Ray' if address == 'local' else address} with {cpus:g} CPU(s), "
        f"{ray.cluster_resources().get('GPU', 0):g} GPU(s)")
    return ray


def _own_local_ray():
    """ray.init's arguments for a Ray of this run alone, on the loopback interface, that leaves
    every other Ray on the machine as it was: its own temporary folder (not /tmp/ray, where
    `ray start` clusters and the `ray` command find theirs) and a token of its own, given to its
    processes in the environment (Ray would otherwise write ~/.ray/auth_token, which switches later
    `ray start` clusters and drivers on this machine to token authentication). The folder is
    removed when the run ends."""
    folder = tempfile.mkdtemp(prefix="neural-style-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    _set_auth_mode("token")

    def remove():
        _ray().shutdown()  # before its folder goes (idempotent: Ray's own exit handler may run later)
        shutil.rmtree(folder, ignore_errors=True)
    atexit.register(remove)
    return dict(_node_ip_address="127.0.0.1", _temp_dir=folder)


def _authenticate_as_the_cluster_asks(address):
    """Ray's token authentication (RAY_AUTH_MODE) for this process as the cluster at `address`
    has it, found by asking its GCS for the cluster's id without a token: refused as
    unauthenticated, the cluster wants a token, and this machine's (RAY_AUTH_TOKEN,
    RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) must be the one it accepts; answered, it has none,
    and a driver in token mode would refuse the cluster's own calls back to it, which then
    destroys the driver's actors. An explicit RAY_AUTH_MODE is kept; a cluster that cannot be
    reached is left for ray.init to report."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    try:
        import grpc
        from ray._private.services import canonicalize_bootstrap_address
        from ray._raylet import AuthenticationTokenLoader
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
        gcs = canonicalize_bootstrap_address(address)
    except Exception:  # noqa: BLE001 - another Ray's internals, or no cluster found: ray.init says
        return

    def answer(token=None):
        metadata = [("authorization", f"Bearer {token}")] if token else None
        with grpc.insecure_channel(gcs) as channel:
            try:
                gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                    gcs_service_pb2.GetClusterIdRequest(), timeout=10, metadata=metadata)
            except grpc.RpcError as e:
                return e.code()
        return grpc.StatusCode.OK

    first = answer()
    if first == grpc.StatusCode.OK:
        _set_auth_mode("disabled")
    elif first == grpc.StatusCode.UNAUTHENTICATED:
        loader = AuthenticationTokenLoader.instance()
        if not loader.has_token(ignore_auth_mode=True):
            raise ToolError(f"the Ray cluster at {address} asks for its token (Ray's token authentication): copy "
                            "its ~/.ray/auth_token to this machine, or set RAY_AUTH_TOKEN")
        if answer(loader.get_raw_token(ignore_auth_mode=True)) == grpc.StatusCode.UNAUTHENTICATED:
            raise ToolError(f"the Ray cluster at {address} refuses this machine's token: copy the cluster's "
                            "~/.ray/auth_token here, or set RAY_AUTH_TOKEN to it")
        _set_auth_mode("token")


def _set_auth_mode(mode):
    """RAY_AUTH_MODE for this process and the processes it starts; Ray's configuration, read when
    Ray was imported, is read again."""
    from ray._raylet import Config
    os.environ["RAY_AUTH_MODE"] = mode
    Config.initialize("")


def _worker_threads():
    """TensorFlow in a worker uses the CPUs its task asked for (the number is in the task's runtime
    environment, so workers of other counts are not reused)."""
    import device
    threads = int(os.environ.get(THREADS_ENV, "0"))
    if threads:
        device.limit_threads(threads)


class _Signals:
    """While waiting on Ray, Ctrl-C and SIGTERM are noted, not raised: an exception raised inside
    Ray's wait surfaces as a SystemError. `check()` raises Interrupted between waits."""

    def __enter__(self):
        self.caught = None
        self.previous = {s: signal.signal(s, self._note) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _note(self, signum, frame):
        self.caught = signum

    def check(self):
        if self.caught is not None:
            raise_interrupted(self.caught, None)

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _wait(ray, refs, signals):
    """The first of `refs` to finish, checking for Ctrl-C twice a second."""
    while True:
        done, _ = ray.wait(refs, num_returns=1, timeout=0.5)
        signals.check()
        if done:
            return done[0]


def _cancel(ray, refs):
    """Cancel the tasks still running. Those already finished are left alone: Ray (2.60) can
    abort the driver when a forced cancellation races with the task's completion ("Tried to
    complete task that was not pending", ray-project/ray#54527 for its sibling); this narrows
    that window, it cannot close it."""
    refs = list(refs)
    try:
        _, refs = ray.wait(refs, num_returns=len(refs), timeout=0)
    except Exception:  # noqa: BLE001 - a lost worker or connection: cancel them all
        pass
    for ref in refs:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # already finished, or its worker is gone
            pass


# --- independent jobs --------------------------------------------------------------------------

def _run_job(function, args, paths, *contents):
    """A Ray task: function(*args, files) with files = {path: bytes} of the job's input files."""
    _worker_threads()
    return function(*args, dict(zip(paths, contents)))


def run_tasks(function, jobs, on_result, address, cpus_per_task=1, gpus_per_task=0, log=print):
    """Run function(*args, files) for each job (key, args, paths) as a Ray task, where files maps
    each of the job's paths to the file's bytes (each file read and sent to the cluster once).
    `on_result(key, result, error)` is called on the driver as each finishes, in the order they
    finish: `error` is a message where the files could not be read or the task failed past its
    retries. Ctrl-C cancels the tasks still running."""
    if not jobs:
        return
    ray = connect(address, cpus_per_task, log)
    task = ray.remote(max_retries=RETRIES)(_run_job)
    uploaded = {}

    def ref(path):
        if path not in uploaded:
            with open(path, "rb") as f:
                uploaded[path] = ray.put(f.read())
        return uploaded[path]

    pending = {}
    for key, args, paths in jobs:
        try:
            refs = [ref(p) for p in paths]
        except OSError as e:
            on_result(key, None, f"cannot read {e.filename}: {e.strerror}")
            continue
        # Named after the job's function: Ray shows it, and names the worker's process ray::<name>
        options = dict(num_cpus=cpus_per_task, num_gpus=gpus_per_task, name=function.__name__)
        pending[task.options(**options).remote(function, args, list(paths), *refs)] = key
    try:
        with _Signals() as signals:
            while pending:
                done = _wait(ray, list(pending), signals)
                key = pending.pop(done)
                try:
                    result, error = ray.get(done), None
                except ray.exceptions.RayError as e:  # retries exhausted, or a bug: this job fails
                    result, error = None, f"the Ray task failed: {str(e).splitlines()[0]}"
                on_result(key, result, error)
    except (Interrupted, KeyboardInterrupt):
        _cancel(ray, pending)
        raise


# --- tiles -------------------------------------------------------------------------------------

class _TileWorker:
    """A Ray actor: the network, loaded once, and the tiles' compiled losses of the current level."""

    def __init__(self, network_settings):
        _worker_threads()
        import backends
        self.net = backends.load(network_settings)
        self.level, self.stylizers = None, None

    def optimise(self, level, targets, blend, weights, pixels, content, rest, own_weight, scale, optimizer,
                 iterations):
        from stylize import stylize
        from tiles import TileStylizers
        if level != self.level:  # a new level (a number): new targets, new sizes
            self.level, self.stylizers = level, TileStylizers(self.net, targets, blend, weights)
        try:
            for step in stylize(self.net, pixels, None, None, blend, weights, optimizer=optimizer,
                                iterations=iterations, stylizer=self.stylizers.aim(content, rest, own_weight, scale),
                                quiet=True):
                pass
        except Stopped as stop:  # a non-finite loss (the driver interrupts by cancelling)
            return {"error": str(stop.cause), "image": stop.image}
        return {"image": step.image, "losses": step.losses}


class Actors:
    """Ray actors of one class (`actor_class(*args)`), as many as the cluster has room for
    (--cpus-per-task, --gpus-per-task), each restarted by Ray if its process dies and its call
    retried. TensorFlow in each uses the CPUs its task asked for."""

    def __init__(self, actor_class, args, tiles, what, log=print):
        self.ray = ray = connect(tiles.ray, tiles.cpus_per_task, log)
        resources = ray.cluster_resources()
        count = int(resources.get("CPU", 1) // tiles.cpus_per_task)
        if tiles.gpus_per_task:
            count = min(count, int(resources.get("GPU", 0) // tiles.gpus_per_task))
        if count < 1:
            raise ToolError(f"the Ray cluster has no room for a task of {tiles.cpus_per_task} CPU(s) and "
                            f"{tiles.gpus_per_task:g} GPU(s)")
        actor = ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES)(actor_class)
        options = dict(num_cpus=tiles.cpus_per_task, num_gpus=tiles.gpus_per_task)
        # The arguments go into the object store once, and this object holds them: a restarted
        # actor runs its constructor again, and Ray frees arguments that only the first
        # construction referenced (ray-project/ray#47043, #53727).
        self.args = [ray.put(arg) for arg in args]
        self.actors = [actor.options(**options).remote(*self.args) for _ in range(count)]
        self.what = what
        log(f"Ray: {count} {what} worker(s) of {tiles.cpus_per_task} CPU(s)")

    def run(self, next_call, on_done):
        """Call the actors until nothing runs and next_call() gives nothing more: next_call() is
        (key, method name, args), or None when nothing can start now; on_done(key, result) is
        called here as each call finishes, in the order they finish. Ctrl-C (and an exception
        from on_done) cancels what runs."""
        ray, pending, free = self.ray, {}, list(self.actors)
        try:
            with _Signals() as signals:
                while True:
                    while free:
                        call = next_call()
                        if call is None:
                            break
                        key, method, args = call
                        actor = free.pop()
                        pending[getattr(actor, method).remote(*args)] = (key, actor)
                    if not pending:
                        return
                    done = _wait(ray, list(pending), signals)
                    key, actor = pending.pop(done)
                    free.append(actor)
                    try:
                        result = ray.get(done)
                    except ray.exceptions.RayError as e:
                        raise ToolError(f"a {self.what} failed on the Ray cluster: {str(e).splitlines()[0]}") from None
                    on_done(key, result)
        except BaseException:
            _cancel(ray, pending)
            raise

    def close(self):
        for actor in self.actors:
            self.ray.kill(actor)


class Worker:
    """The base of an actor class: TensorFlow in it uses the CPUs its task asked for."""

    def __init__(self):
        _worker_threads()


class TileWorkers(Actors):
    """Ray actors optimising the tiles of a level (tiles.py)."""

    def __init__(self, tiles, network_settings, log=print):
        super().__init__(_TileWorker, (network_settings,), tiles, "tile", log)
        self.targets, self.targets_ref, self.level = None, None, 0

    def optimise(self, jobs, targets, blend, weights, optimizer, iterations, on_done, bar=None):
        """[(pixels, content, rest, own_weight, scale)] -> [Step] in the same order, each tile on
        a free actor; `on_done(index, Step)` as each finishes. A tile whose loss became non-finite
        is handed to on_done with its best finite image, and a NumericalError raised."""
        from stylize import Step
        if targets is not self.targets:  # a new level: its targets are sent to the cluster once
            self.targets, self.level, self.targets_ref = targets, self.level + 1, self.ray.put(targets)
        results, queue = [None] * len(jobs), list(enumerate(jobs))

        def next_call():
            if not queue:
                return None
            i, job = queue.pop(0)
            return i, "optimise", (self.level, self.targets_ref, blend, weights, *job, optimizer, iterations)

        def finished(i, result):
            if "error" in result:  # a non-finite loss: keep this tile's best finite image
                on_done(i, Step(0, result["image"], False))
                raise NumericalError(result["error"])
            results[i] = Step(iterations, result["image"], True, result["losses"])
            on_done(i, results[i])
            if bar is not None:
                bar.update(iterations)
        self.run(next_call, finished)
        return results
