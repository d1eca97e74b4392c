// HttpListener: runs a cpp-httplib server on one loopback (or any) address
// on its own thread, for jobd's dashboard and relayd's metrics endpoint.
//
// cpp-httplib 0.11 gives no readiness signal, and its stop() only
// interrupts an accept loop that is already running. So Start() binds (the
// socket queues connections from then on), runs listen_after_bind() on a
// thread and waits, bounded, until the server reports running; Stop() can
// then never miss the loop. Idle keep-alive connections are held at most
// one second, which bounds how long Stop() waits for the worker threads.
#ifndef MUSTER_COMMON_HTTP_HTTP_LISTENER_H_
#define MUSTER_COMMON_HTTP_HTTP_LISTENER_H_

#include <atomic>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace httplib {
class Server;
}

namespace muster::http {

// A `host:port` to listen on; port 0 means "pick a free port".
struct ListenAddress {
  std::string host;
  int port = 0;

  // InvalidArgument naming the text unless it is HOST:PORT with a
  // non-empty host and a port in 0..65535.
  static absl::StatusOr<ListenAddress> Parse(absl::string_view host_port);
  std::string ToString() const;
};

class HttpListener {
 public:
  // `server` (with its routes registered) must outlive this object.
  explicit HttpListener(httplib::Server* server);
  // Stops the server if it runs.
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Binds `address` and serves on a thread. Unavailable when the address
  // cannot be bound (in use, not local) or the server does not start
  // within 5 s. Call at most once.
  absl::Status Start(const ListenAddress& address);
  // Stops accepting, finishes open requests, joins every thread. Idempotent.
  void Stop();
  // The bound port after a successful Start(), else 0.
  int port() const { return port_; }

 private:
  httplib::Server* const server_;
  std::thread thread_;
  std::atomic<bool> loop_done_{true};  // listen_after_bind() has returned
  int port_ = 0;
};

}  // namespace muster::http

#endif  // MUSTER_COMMON_HTTP_HTTP_LISTENER_H_
