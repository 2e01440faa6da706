package org.nxia.gemini.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

import org.nxia.gemini.api.CallContext;
import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.portal.api.Ref;

/** Maps wire values to Java parameter and return types, and calls host service methods by name. */
final class Values {
    private Values() {
    }

    /**
     * Converts a wire value to {@code type}, widening integers; BAD_ARGS if it cannot. A reference
     * becomes a {@code byte[]} (a copy) or a read-only {@link MemorySegment} (in place) through
     * {@code context}, which checks it; without a context it stays a {@link Ref}.
     */
    static Object convert(Object v, Class<?> type, String what, CallContext context) {
        if (type == void.class || type == Void.class) {
            return null;
        }
        if (type == Object.class) {
            return v;
        }
        if (v == null) {
            if (type.isPrimitive()) {
                throw new GeminiException(ErrorCode.BAD_ARGS, what + ": null for a " + type.getName());
            }
            return null;
        }
        if ((type == long.class || type == Long.class) && (v instanceof Long || v instanceof Integer)) {
            return ((Number) v).longValue();
        }
        if ((type == int.class || type == Integer.class) && (v instanceof Integer
                || v instanceof Long l && l == (int) (long) l)) {
            return ((Number) v).intValue();
        }
        if ((type == double.class || type == Double.class) && v instanceof Number n) {
            return n.doubleValue();
        }
        if ((type == boolean.class || type == Boolean.class) && v instanceof Boolean) {
            return v;
        }
        if (v instanceof Ref r && context != null && (type == byte[].class || type == MemorySegment.class)) {
            MemorySegment in = context.read(r);
            return type == MemorySegment.class ? in : in.toArray(ValueLayout.JAVA_BYTE);
        }
        if (v instanceof byte[] a && type == MemorySegment.class) {
            return MemorySegment.ofArray(a).asReadOnly();
        }
        if (type.isInstance(v) && (type == String.class || type == byte[].class || type == Ref.class || type == CapabilityToken.class)) {
            return v;
        }
        throw new GeminiException(ErrorCode.BAD_ARGS, what + ": " + Wire.text(v) + " is not a " + type.getSimpleName());
    }

    /** The public methods of {@code service} that guests can call, by name. */
    static List<Method> callable(Object service) {
        List<Method> out = new ArrayList<>();
        for (Method m : service.getClass().getMethods()) {
            if (m.getDeclaringClass() != Object.class && !Modifier.isStatic(m.getModifiers())) {
                out.add(m);
            }
        }
        return out;
    }

    static List<String> names(Object service) {
        TreeSet<String> names = new TreeSet<>();
        for (Method m : callable(service)) {
            names.add(m.getName());
        }
        return List.copyOf(names);
    }

    /** Calls {@code method} of {@code service} with {@code args}; an optional leading CallContext parameter gets {@code context}. */
    static Object invoke(Object service, String name, String method, List<Object> args, CallContext context) throws Exception {
        boolean named = false;
        for (Method m : callable(service)) {
            if (!m.getName().equals(method)) {
                continue;
            }
            named = true;
            Class<?>[] p = m.getParameterTypes();
            int skip = p.length > 0 && p[0] == CallContext.class ? 1 : 0;
            if (p.length - skip != args.size()) {
                continue;
            }
            Object[] a = new Object[p.length];
            if (skip == 1) {
                a[0] = context;
            }
            for (int i = 0; i < args.size(); i++) {
                a[i + skip] = convert(args.get(i), p[i + skip], name + "." + method + " argument " + (i + 1), context);
            }
            try {
                m.setAccessible(true);
                Object r = m.invoke(service, a);
                return m.getReturnType() == void.class ? null : r;
            } catch (InvocationTargetException e) {
                if (e.getCause() instanceof Exception x) {
                    throw x;
                }
                throw e;
            }
        }
        if (named) {
            throw new GeminiException(ErrorCode.BAD_ARGS, name + "." + method + " takes no " + args.size() + " arguments");
        }
        throw new GeminiException(ErrorCode.NO_METHOD, "service " + name + " has no method " + method);
    }
}
