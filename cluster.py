"""Batches and tiles on a Ray cluster (optional: pip install '.[ray]').

`connect()` starts a local Ray for the run or joins a cluster. `run_pairs()` runs batch.py's
pairs as Ray tasks: each is sent its input files' bytes and returns the finished image and its
parameters, which the driver writes, so workers need no shared file system. `TileWorkers` are
Ray actors that hold the network and optimise the tiles of a colour group (tiles.py) at the
same time; the driver blends them. Ray retries a task whose worker died; Ctrl-C on the driver
cancels what is running.
"""
import copy
import os
import signal

from errors import Interrupted, NumericalError, ToolError, raise_interrupted

ROOT = os.path.dirname(os.path.abspath(__file__))
RETRIES = 3  # Ray re-runs a task (or restarts an actor) whose worker process died, this many times


def _ray():
    try:
        import ray
    except ImportError:
        raise ToolError("--ray needs Ray: pip install '.[ray]' (or pip install -r requirements-ray.txt)") from None
    return ray


def connect(address, cpus_per_task, log=print):
    """Start a local Ray (address 'local') or join a cluster ('auto', host:port, ray://...)."""
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or os.path.isfile(
            os.path.expanduser(os.environ.get("RAY_AUTH_TOKEN_PATH", "~/.ray/auth_token")))):
        # Ray's token authentication (on by default since 2.5x): with an explicit address, Ray
        # sends this machine's token only in token mode, which it sets by itself only for 'auto'.
        os.environ["RAY_AUTH_MODE"] = "token"
    ray = _ray()
    if ray.is_initialized():
        return ray
    env = {"env_vars": {"NEURAL_STYLE_THREADS": str(cpus_per_task), "TF_CPP_MIN_LOG_LEVEL": "3"}}
    if os.path.isfile(os.path.join(ROOT, "pyproject.toml")):  # a source checkout: ship its code to the workers
        env.update(working_dir=ROOT, excludes=[".git", ".venv", "venv", "__pycache__", "tests", "benchmarks",
                                               "examples", "*.jpg", "*.png", "*.mat"])  # not the 534 MB VGG file
    kwargs = dict(runtime_env=env, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        if address == "local":  # this machine only: a Ray on the loopback interface
            kwargs["_node_ip_address"] = "127.0.0.1"
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


def limit_threads():
    """TensorFlow in a worker uses the CPUs its task asked for (set before TensorFlow starts;
    the number is in the task's runtime environment, so workers of other counts are not reused)."""
    threads = int(os.environ.get("NEURAL_STYLE_THREADS", "0"))
    import neural_style
    neural_style.import_tensorflow_quietly()
    import tensorflow as tf
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # TensorFlow already started in this worker, with the same count


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


def _options(args):
    return dict(num_cpus=args.cpus_per_task, num_gpus=args.gpus_per_task)


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


# --- batches -----------------------------------------------------------------------------------

def _render_pair(args, paths, *contents):
    """A Ray task: one content x style pair, whole, from the bytes of its input files.
    Returns {"image", "params"}, or {"error"} (and "image", "params" of a partial result)."""
    limit_threads()
    import images
    import neural_style
    files = dict(zip(paths, contents))
    args.ray = None  # the pair itself runs whole on this worker
    try:
        content, styles, initial = neural_style.load_inputs(args, read=files.__getitem__)
        result = neural_style.render(args, content, styles, initial, log=lambda *a: None)
        return {"image": images.to_uint8(result), "params": neural_style.params_text(args)}
    except NumericalError as e:
        return {"error": str(e), "image": images.to_uint8(e.partial_image),
                "params": neural_style.params_text(args, partial="stopped: the loss was not finite")}
    except ToolError as e:
        return {"error": str(e)}


def run_pairs(address, pairs, on_result, log=print):
    """Run [(args, output)] as Ray tasks; on_result(args, output, result) is called on the driver
    as each finishes, in the order they finish. Ctrl-C cancels the tasks still running."""
    if not pairs:
        return
    ray = connect(address, pairs[0][0].cpus_per_task, log)
    task = ray.remote(max_retries=RETRIES)(_render_pair)
    uploaded = {}  # each input file is read and sent to the cluster once

    def ref(path):
        if path not in uploaded:
            with open(path, "rb") as f:
                uploaded[path] = ray.put(f.read())
        return uploaded[path]

    pending = {}
    for args, output in pairs:
        args = copy.copy(args)
        args.output = output  # stored in the result's parameters, as a run on one machine stores it
        paths = [args.content] + list(args.styles) + ([args.initial] if args.initial else [])
        try:
            refs = [ref(p) for p in paths]
        except OSError as e:
            on_result(args, output, {"error": f"cannot read {e.filename}: {e.strerror}"})
            continue
        pending[task.options(**_options(args)).remote(args, paths, *refs)] = (args, output)
    try:
        with _Signals() as signals:
            while pending:
                done = _wait(ray, list(pending), signals)
                args, output = pending.pop(done)
                try:
                    result = ray.get(done)
                except ray.exceptions.RayError as e:  # retries exhausted, or a bug: this pair fails
                    result = {"error": f"the Ray task failed: {str(e).splitlines()[0]}"}
                on_result(args, output, result)
    except (Interrupted, KeyboardInterrupt):
        _cancel(ray, pending)
        raise


# --- tiles -------------------------------------------------------------------------------------

class _TileWorker:
    """A Ray actor: the network, loaded once, and one compiled loss per tile size and level."""

    def __init__(self, network_type, network_file, pooling, precision):
        limit_threads()
        import network
        import neural_style
        module = neural_style.network_module(network_type)
        self.net = module.load(network.find_weights(module.SOURCE, network_file), pooling,
                               neural_style.compute_dtype(precision, network_type))
        self.level, self.stylizers = None, {}

    def optimise(self, level, targets, blend, weights, pixels, content, rest, own_weight, scale, optim, iterations,
                 flags):
        from stylize import Stylizer, stylize
        if level != self.level:  # a new level (a number): new targets, new sizes
            self.level, self.stylizers = level, {}
        shape = content.shape[:2]
        if shape not in self.stylizers:
            self.stylizers[shape] = Stylizer(self.net, content, [], blend, weights, style_targets=targets, part=True)
        else:
            self.stylizers[shape].set_content(content)
        stylizer = self.stylizers[shape]
        stylizer.set_rest(rest, own_weight, scale)
        try:
            for step in stylize(self.net, pixels, None, None, blend, weights, optim=optim, iterations=iterations,
                                stylizer=stylizer, quiet=True, **flags):
                pass
        except NumericalError as e:
            return {"error": str(e), "image": e.partial_image}
        return {"image": step.image, "losses": step.losses}


class TileWorkers:
    """Ray actors optimising tiles: as many as the cluster has room for (--cpus-per-task,
    --gpus-per-task), each restarted by Ray if its process dies, its work retried."""

    def __init__(self, args, log=print):
        self.ray = ray = connect(args.ray, args.cpus_per_task, log)
        resources = ray.cluster_resources()
        count = int(resources.get("CPU", 1) // args.cpus_per_task)
        if args.gpus_per_task:
            count = min(count, int(resources.get("GPU", 0) // args.gpus_per_task))
        if count < 1:
            raise ToolError(f"the Ray cluster has no room for a task of {args.cpus_per_task} CPU(s) and "
                            f"{args.gpus_per_task:g} GPU(s)")
        actor = ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES)(_TileWorker)
        self.actors = [actor.options(**_options(args)).remote(args.network_type, args.network_file, args.pooling,
                                                               args.precision) for _ in range(count)]
        self.targets, self.targets_ref, self.level = None, None, 0
        log(f"Ray: {count} tile worker(s) of {args.cpus_per_task} CPU(s)")

    def optimise(self, jobs, targets, blend, weights, optim, iterations, flags, bar=None):
        """[(pixels, content, rest, own_weight, scale)] -> [Step] in the same order, each tile
        on a free actor. On Ctrl-C or a non-finite loss, the exception's `finished` holds
        [(index, Step)] of the tiles done (and the failed tile's best finite image)."""
        from stylize import Step
        ray = self.ray
        if targets is not self.targets:  # a new level: its targets are sent to the cluster once
            self.targets, self.level, self.targets_ref = targets, self.level + 1, ray.put(targets)
        results, pending, queue, free = [None] * len(jobs), {}, list(enumerate(jobs)), list(self.actors)
        try:
            with _Signals() as signals:
                while queue or pending:
                    while queue and free:
                        i, job = queue.pop(0)
                        actor = free.pop()
                        pending[actor.optimise.remote(self.level, self.targets_ref, blend, weights, *job, optim,
                                                      iterations, flags)] = (i, actor)
                    done = _wait(ray, list(pending), signals)
                    i, actor = pending.pop(done)
                    free.append(actor)
                    try:
                        result = ray.get(done)
                    except ray.exceptions.RayError as e:
                        raise ToolError(f"a tile failed on the Ray cluster: {str(e).splitlines()[0]}") from None
                    if "error" in result:  # a non-finite loss: keep this tile's best finite image
                        error = NumericalError(result["error"])
                        error.partial_image = result["image"]
                        results[i] = Step(0, result["image"], False)
                        raise error
                    results[i] = Step(iterations, result["image"], True, result["losses"])
                    if bar is not None:
                        bar.update(iterations)
        except (Interrupted, KeyboardInterrupt, NumericalError) as e:
            _cancel(ray, pending)
            e.finished = [(i, step) for i, step in enumerate(results) if step is not None]
            raise
        return results

    def close(self):
        for actor in self.actors:
            self.ray.kill(actor)
