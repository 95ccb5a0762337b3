"""Forward orders, allocation, warehouse lots, traceability, settlement and unsold-risk warnings."""
