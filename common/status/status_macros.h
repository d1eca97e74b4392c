// Early-return helpers for absl::Status and absl::StatusOr, shared by every
// binary, so a function that calls several fallible steps reads as the list
// of those steps.
//
//   RETURN_IF_ERROR(store.Exec("BEGIN"));
//   ASSIGN_OR_RETURN(std::unique_ptr<Database> file, Database::Open(path));
//
// Both evaluate `expr` once. ASSIGN_OR_RETURN expands to several statements
// (it declares `lhs` in the enclosing scope), so it cannot be the body of an
// unbraced if; a `lhs` whose type holds a comma needs `auto` or an alias.
#ifndef MUSTER_COMMON_STATUS_STATUS_MACROS_H_
#define MUSTER_COMMON_STATUS_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MUSTER_CONCAT_INNER_(a, b) a##b
#define MUSTER_CONCAT_(a, b) MUSTER_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status muster_status_ = (expr);          \
    if (!muster_status_.ok()) return muster_status_; \
  } while (0)

// `lhs = *expr` for an absl::StatusOr, or returns its status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(MUSTER_CONCAT_(muster_statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                           \
  if (!statusor.ok()) return statusor.status();     \
  lhs = std::move(*statusor)

#endif  // MUSTER_COMMON_STATUS_STATUS_MACROS_H_
