import Glibc

/// A failed system call, with its name, the path (or what it worked on) and errno.
public struct SystemCallError: Error, Sendable, CustomStringConvertible {
    /// The system call's name, such as `open` or `tcsetattr`.
    public var call: String
    /// The path or thing it worked on ("the MQTT wake pipe"); may be empty.
    public var path: String
    /// The `errno` the call left.
    public var code: Int32

    /// The error of a call that failed; `SystemCall.retrying` makes it from `errno`.
    /// - Parameters:
    ///   - call: the system call's name.
    ///   - path: what it worked on, for the message.
    ///   - code: `errno`, read right after the call, before anything else can change it.
    public init(call: String, path: String, code: Int32) {
        self.call = call
        self.path = path
        self.code = code
    }

    /// `call(path): strerror (errno N)`, for the log.
    public var description: String { "\(call)(\(path)): \(String(cString: strerror(code))) (errno \(code))" }
}

/// System calls that can be interrupted or would block: EINTR is retried, EAGAIN/EWOULDBLOCK comes
/// back as a value (a non-blocking descriptor with nothing to do is not an error), anything else
/// is thrown with the call's name and errno. swift-nio's `System.swift` is the model. Every call on a
/// descriptor the gateway and the simulator make (sockets, ptys, pipes, the files they replace)
/// goes through it but `close`, which on Linux must not be retried (the descriptor is gone even
/// when it says EINTR); the `stat` family and `kill` answer questions and are read where they are
/// asked; the test tools (bench, torture) open their log files directly.
public enum SystemCall {
    /// What a call on a non-blocking descriptor did.
    public enum Outcome<Value: Sendable>: Sendable {
        case done(Value)
        /// EAGAIN or EWOULDBLOCK: nothing to read, or no room to write, now.
        case wouldBlock
    }

    /// Runs `body` until it is not interrupted.
    /// - Parameters:
    ///   - call: the system call's name, for the error.
    ///   - path: what it worked on, for the error.
    ///   - body: the call; a negative result means failure, with `errno` set.
    /// - Returns: the call's result.
    /// - Throws: `SystemCallError` with errno, EAGAIN included.
    @discardableResult
    public static func retrying<Result: BinaryInteger>(_ call: String, _ path: String = "", _ body: () -> Result)
        throws(SystemCallError) -> Result
    {
        while true {
            let result = body()
            if result >= 0 { return result }
            if errno == EINTR { continue }
            throw SystemCallError(call: call, path: path, code: errno)
        }
    }

    /// As `retrying`, but EAGAIN/EWOULDBLOCK is `.wouldBlock`, not an error.
    /// - Throws: `SystemCallError` with errno for any other failure.
    public static func retryingUnlessWouldBlock<Result: BinaryInteger & Sendable>(
        _ call: String, _ path: String = "", _ body: () -> Result
    ) throws(SystemCallError) -> Outcome<Result> {
        do throws(SystemCallError) {
            return .done(try retrying(call, path, body))
        } catch  where error.code == EAGAIN || error.code == EWOULDBLOCK {
            return .wouldBlock
        }
    }
}
