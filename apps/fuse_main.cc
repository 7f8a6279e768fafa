// mica-fuse: the FUSE daemon. Mounts MOUNTPOINT with libfuse (mount, unmount and option
// parsing only), then serves the kernel's requests from fuse/ on a Runtime with one client
// per executor, in the foreground, logging to stderr, until the file system is unmounted
// (SIGINT/SIGTERM unmount it; so does `fusermount3 -u`); exits 0 then. Failures before the
// mount (bad flags, a missing token file, an unreachable mgmtd) print one line and exit 1
// (2 for usage). docs/fuse.md describes the request path and the options.
#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "apps/cli_args.h"
#include "apps/fuse_options.h"
#include "apps/server_runtime.h"
#include "async/log.h"
#include "async/runtime.h"
#include "async/scope.h"
#include "client/client.h"
#include "fuse/dev_transport.h"
#include "fuse/dispatcher.h"
#include "fuse/file_table.h"
#include "fuse/uring_transport.h"
#include "net/cluster_token.h"
#include "net/http_server.h"

namespace mica::apps {

namespace {

constexpr size_t kRequestHeadroomBytes = 4096;  // headers and names beyond max_write
constexpr uint32_t kMaxWriteBytes = 1u << 20;

// The dispatcher's INIT hook over fuse/uring_transport.h: prepare() makes the queues (their
// buffers sized for the INIT reply's max request), start() submits the REGISTERs.
class UringStarter final : public fuse::UringHook {
 public:
  UringStarter(Runtime& runtime, int dev_fd, uint32_t depth)
      : runtime_(runtime), dev_fd_(dev_fd), depth_(depth) {}
  void set_sink(fuse::RequestSink* sink) { sink_ = sink; }
  Status prepare(const fuse::InitIn& in, size_t payload_bytes) override {
    (void)in;
    Result<std::unique_ptr<fuse::UringTransport>> prepared =
        fuse::UringTransport::prepare(runtime_, dev_fd_, depth_, payload_bytes, *sink_);
    if (!prepared.ok()) return prepared.status();
    transport_ = std::move(*prepared);
    return Status::ok_status();
  }
  void start() override { transport_->start(); }
  fuse::UringTransport* transport() const { return transport_.get(); }

 private:
  Runtime& runtime_;
  int dev_fd_;
  uint32_t depth_;
  fuse::RequestSink* sink_ = nullptr;
  std::unique_ptr<fuse::UringTransport> transport_;
};

struct Daemon {
  FuseInvocation args;
  Runtime* runtime = nullptr;
  std::vector<std::unique_ptr<client::Client>> clients;
  std::unique_ptr<fuse::FileTable> files;
  std::unique_ptr<fuse::Dispatcher> dispatcher;
  std::unique_ptr<fuse::DevTransport> transport;
  struct fuse_session* session = nullptr;
  StopSignals* signals = nullptr;
  std::unique_ptr<net::HttpServer> http;
  std::unique_ptr<UringStarter> uring;
};

int fail(const std::string& message) {
  std::fprintf(stderr, "mica-fuse: %s\n", message.c_str());
  return kExitFailure;
}

uint64_t to_ns(double seconds) {
  return static_cast<uint64_t>(seconds * 1e9);
}

Task<Result<std::unique_ptr<client::Client>>> connect_client(client::ClientOptions options) {
  auto connecting = client::Client::connect(std::move(options));
  co_return co_await std::move(connecting);
}

Task<void> close_client(client::Client* client) {
  auto closing = client->close();
  co_await std::move(closing);
}

// Waits for SIGINT/SIGTERM and unmounts; the lanes then see ENODEV and end.
Task<void> wait_for_stop(Daemon* d) {
  auto waiting = d->signals->wait();
  Result<int> signal = co_await std::move(waiting);
  if (!signal.ok()) co_return;  // cancelled: the mount ended by itself
  MICA_LOG(Info, "fuse", "{}: unmounting {}", signal_name(*signal), d->args.mountpoint);
  fuse_session_unmount(d->session);
}

Task<void> run_lane(Daemon* d, size_t lane) {
  co_await d->runtime->executor(lane).schedule();
  auto running = d->transport->run(lane);
  Status ran = co_await std::move(running);
  if (!ran.ok()) MICA_LOG(Error, "fuse", "lane {}: {}", lane, ran.to_string());
  auto draining = d->dispatcher->drain(lane);
  co_await std::move(draining);
  co_await d->runtime->executor(0).schedule();
}

Status start_metrics(Daemon* d) {
  if (d->args.metrics.empty()) return Status::ok_status();
  Result<SocketAddress> listen = SocketAddress::parse(d->args.metrics);
  if (!listen.ok()) return listen.status();
  d->http = std::make_unique<net::HttpServer>();
  Result<SocketAddress> bound = d->http->start(*listen);
  if (!bound.ok()) return bound.status();
  MICA_LOG(Info, "fuse", "metrics: http://{}/metrics", bound->to_string());
  return Status::ok_status();
}

// The whole serving life on executor 0: lanes until unmount, then shutdown in order.
Task<Status> serve(Daemon* d) {
  Status metrics = start_metrics(d);
  if (!metrics.ok()) MICA_LOG(Error, "fuse", "-o metrics: {}", metrics.to_string());
  TaskScope stopper;
  stopper.spawn(wait_for_stop(d));
  std::vector<Task<void>> lanes;
  for (size_t i = 0; i < d->runtime->size(); ++i) lanes.push_back(run_lane(d, i));
  auto serving = when_all(std::move(lanes));
  co_await std::move(serving);
  stopper.cancel();
  co_await stopper.join();
  // The classic readers saw the connection end: so do the ring's entries.
  if (d->uring && d->uring->transport() != nullptr) {
    auto stopping_ring = d->uring->transport()->stop();
    co_await std::move(stopping_ring);
  }
  auto closing = d->files->close_all();
  co_await std::move(closing);
  for (size_t i = 0; i < d->clients.size(); ++i) {
    co_await d->runtime->executor(i).schedule();
    auto closing_client = close_client(d->clients[i].get());
    co_await std::move(closing_client);
    co_await d->runtime->executor(0).schedule();
  }
  if (d->http) {
    auto stopping = d->http->shutdown();
    co_await std::move(stopping);
  }
  co_return Status::ok_status();
}

int notify_fd(void* context, std::span<const std::byte> message) {
  return static_cast<fuse::DevTransport*>(context)->notify(message);
}

// libfuse mounts: fuse_session_new with no operations, fuse_session_mount, the fd.
Status mount(Daemon* d) {
  std::string options = "fsname=mica,subtype=mica";
  for (const std::string& o : d->args.mount_options) options += "," + o;
  struct fuse_args fargs = FUSE_ARGS_INIT(0, nullptr);
  fuse_opt_add_arg(&fargs, "mica-fuse");
  fuse_opt_add_arg(&fargs, "-o");
  fuse_opt_add_arg(&fargs, options.c_str());
  struct fuse_lowlevel_ops ops {};
  d->session = fuse_session_new(&fargs, &ops, sizeof(ops), nullptr);
  fuse_opt_free_args(&fargs);
  if (d->session == nullptr)
    return Status(StatusCode::kInvalidArgument, "mount options " + options);
  if (fuse_session_mount(d->session, d->args.mountpoint.c_str()) != 0) {
    fuse_session_destroy(d->session);
    d->session = nullptr;
    return Status(StatusCode::kIoError, "cannot mount " + d->args.mountpoint);
  }
  return Status::ok_status();
}

Result<std::vector<fuse::Lane>> connect_all(Daemon* d) {
  client::ClientOptions options{.mgmtd = d->args.mgmtd, .token_file = d->args.token_file};
  Result<net::ClusterToken> token = net::load_cluster_token(d->args.token_file);
  if (!token.ok())
    return Status(token.status().code(),
                  "token file " + d->args.token_file + ": " + token.status().to_string());
  options.token = *token;
  std::vector<fuse::Lane> lanes;
  for (size_t i = 0; i < d->runtime->size(); ++i) {
    Result<std::unique_ptr<client::Client>> connected =
        d->runtime->block_on(connect_client(options), i);
    if (!connected.ok())
      return Status(connected.status().code(),
                    "connecting to mgmtd " + d->args.mgmtd + ": " + connected.status().to_string());
    lanes.push_back({.executor = &d->runtime->executor(i), .client = connected->get()});
    d->clients.push_back(std::move(*connected));
  }
  return lanes;
}

void close_clients(Daemon* d) {
  for (size_t i = 0; i < d->clients.size(); ++i)
    d->runtime->block_on(close_client(d->clients[i].get()), i);
  d->clients.clear();
}

fuse::DispatcherOptions dispatcher_options(const FuseInvocation& args) {
  fuse::DispatcherOptions o;
  o.times = {.entry_ns = to_ns(args.entry_timeout_seconds),
             .attr_ns = to_ns(args.attr_timeout_seconds),
             .negative_ns = to_ns(args.negative_timeout_seconds)};
  o.writeback_cache = args.writeback_cache;
  o.max_write_bytes = kMaxWriteBytes;
  o.uring = args.uring;
  return o;
}

int run(FuseInvocation args) {
  Result<StopSignals> signals = StopSignals::install();
  if (!signals.ok()) return fail(signals.status().to_string());
  struct stat st {};
  if (::stat(args.mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return fail("mount point " + args.mountpoint + " is not a directory");
  uint32_t threads =
      args.executors != 0 ? args.executors : std::max(1u, std::thread::hardware_concurrency());
  // FUSE over io_uring needs 128-byte SQEs on every executor's ring.
  Runtime runtime(
      RuntimeOptions{.threads = threads, .big_sqes = args.uring != fuse::UringMode::kOff});
  Daemon d{.args = std::move(args), .runtime = &runtime, .signals = &*signals};
  Result<std::vector<fuse::Lane>> lanes = connect_all(&d);
  if (!lanes.ok()) {
    close_clients(&d);
    return fail(lanes.status().to_string());
  }
  d.files = std::make_unique<fuse::FileTable>(
      *lanes, fuse::FileTableOptions{.direct_io = d.args.direct_io});
  d.dispatcher =
      std::make_unique<fuse::Dispatcher>(*lanes, d.files.get(), dispatcher_options(d.args));
  if (Status mounted = mount(&d); !mounted.ok()) {
    close_clients(&d);
    return fail(mounted.to_string());
  }
  fuse::DevTransportOptions transport{.buffer_bytes = kMaxWriteBytes + kRequestHeadroomBytes};
  Result<std::unique_ptr<fuse::DevTransport>> created = fuse::DevTransport::create(
      fuse_session_fd(d.session), runtime.size(), transport, *d.dispatcher);
  int code = kExitOk;
  if (!created.ok()) {
    fuse_session_unmount(d.session);
    close_clients(&d);
    code = fail(created.status().to_string());
  } else {
    d.transport = std::move(*created);
    d.dispatcher->set_notifier(&notify_fd, d.transport.get());
    if (d.args.uring != fuse::UringMode::kOff) {
      d.uring =
          std::make_unique<UringStarter>(runtime, fuse_session_fd(d.session), d.args.uring_depth);
      d.uring->set_sink(d.dispatcher.get());
      d.dispatcher->set_uring_hook(d.uring.get());
    }
    MICA_LOG(Info, "fuse", "serving {} on {} executors", d.args.mountpoint, runtime.size());
    Status served = runtime.block_on(serve(&d), 0);
    if (!served.ok()) code = fail(served.to_string());
    d.clients.clear();
    if (!d.dispatcher->init_status().ok()) code = fail(d.dispatcher->init_status().to_string());
    fuse_session_unmount(d.session);
  }
  d.transport.reset();
  fuse_session_destroy(d.session);
  return code;
}

}  // namespace

}  // namespace mica::apps

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  mica::Result<mica::apps::FuseInvocation> parsed =
      mica::apps::parse_fuse_args(args, ::geteuid() == 0);
  if (!parsed.ok()) {
    std::fprintf(stderr, "mica-fuse: %s\n%s", std::string(parsed.status().message()).c_str(),
                 mica::apps::fuse_usage().c_str());
    return mica::apps::kExitUsage;
  }
  if (parsed->help) {
    std::fputs(mica::apps::fuse_usage().c_str(), stdout);
    return mica::apps::kExitOk;
  }
  return mica::apps::run(std::move(*parsed));
}
