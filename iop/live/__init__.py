"""A group running live: the facilitator's control, the room display, the roster, Socket.IO."""
