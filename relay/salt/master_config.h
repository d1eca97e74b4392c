// MasterConfig: the few keys of a salt-master's config file the relay needs
// to find the master's sockets, caches and keys.
//
// Not a YAML parser: only top-level `key: value` lines are read (a value may
// be quoted with ' or "; a trailing ` # comment` is dropped). Indented lines,
// lists, nested maps, `include`/`default_include` files (master.d/*.conf)
// and the environment are ignored; a key set only there is seen at its
// default. Defaults are Salt 3006.1's (salt/config/__init__.py), with
// root_dir prepended to the directory keys as salt.config.prepend_root_dir
// does.
#ifndef MUSTER_RELAY_SALT_MASTER_CONFIG_H_
#define MUSTER_RELAY_SALT_MASTER_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace muster::relay::salt {

struct MasterConfig {
  std::string root_dir = "/";
  std::string cachedir = "/var/cache/salt/master";
  std::string sock_dir = "/var/run/salt/master";
  std::string pki_dir = "/etc/salt/pki/master";
  std::string interface = "0.0.0.0";
  int ret_port = 4506;
  std::string hash_type = "sha256";
  std::string user;            // the master's user; empty = Salt's default (the current user)
  std::string master_job_cache = "local_cache";
  bool job_cache = true;

  // The request server's ZeroMQ endpoint: tcp://<interface>:<ret_port>,
  // with 0.0.0.0 / :: turned into loopback and IPv6 bracketed.
  std::string RequestUri() const;
  // <sock_dir>/master_event_pub.ipc
  std::string EventPublisherPath() const;
  // <cachedir>/.<user>_key, `user` defaulting to the current user (what
  // salt.daemons.masterapi.mk_key writes at each master start).
  std::string KeyFilePath(const std::string& publishing_user) const;
};

// Reads the master config at `path`. NotFound when missing,
// InvalidArgument (naming the line) when a known key has a bad value
// (ret_port not a port, an unknown hash_type).
absl::StatusOr<MasterConfig> LoadMasterConfig(const std::string& path);

// The same from text already read (tests, or a config held in memory).
absl::StatusOr<MasterConfig> ParseMasterConfig(absl::string_view text);

// The current process's user name (what Salt's get_user() returns).
std::string CurrentUserName();

}  // namespace muster::relay::salt

#endif  // MUSTER_RELAY_SALT_MASTER_CONFIG_H_
