//! Applying ops to a playbook in memory.
