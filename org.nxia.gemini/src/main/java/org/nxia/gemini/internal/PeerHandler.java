package org.nxia.gemini.internal;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;

/**
 * The client end a guest runs, in Java: functions exported by name, no
 * policy (the host enforces it). Used by tests and the loopback benchmark.
 */
final class PeerHandler implements Handler {

    /** An exported function. */
    interface Function {
        Object apply(List<Object> args, Session.Context context) throws Exception;
    }

    private final Map<String, Function> exported = new ConcurrentHashMap<>();

    PeerHandler export(String service, String method, Function f) {
        exported.put(service + "." + method, f);
        return this;
    }

    @Override
    public Object serve(Session session, Wire.Call call, Session.Context context) throws Exception {
        Function f = exported.get(call.service() + "." + call.method());
        if (f == null) {
            throw new GeminiException(ErrorCode.NO_METHOD, "no function " + call.service() + "." + call.method());
        }
        return f.apply(call.args(), context);
    }

    @Override
    public void checkOutgoing(Session session, String bundle, String service, String method) {
    }

    @Override
    public void authenticate(Session session, Wire.Hello hello) {
        throw new GeminiException(ErrorCode.BAD_FRAME, "a client does not accept HELLO");
    }

    @Override
    public void closed(Session session) {
    }
}
