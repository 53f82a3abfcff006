/*
 * fastexec: compatibility stub. Single-operator (aclop*) APIs are not part of
 * the subset this project declares.
 */
#ifndef FASTEXEC_ACL_ACL_OP_H
#define FASTEXEC_ACL_ACL_OP_H

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* FASTEXEC_ACL_ACL_OP_H */
