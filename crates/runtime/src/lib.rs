//! What every elevate function's main shares: environment config, the embedded flows file, tracing, SDK clients.
