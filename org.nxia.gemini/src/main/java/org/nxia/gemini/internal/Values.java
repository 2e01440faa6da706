package org.nxia.gemini.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
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

    /** A host service and the methods guests may call on it. */
    record Exported(Object service, List<Method> methods) {
        /** {@code service} registered under the interfaces named in {@code objectClass} (see {@link #callable}). */
        static Exported of(Object service, Collection<String> objectClass) {
            return new Exported(service, callable(service, objectClass));
        }

        List<String> names() {
            TreeSet<String> names = new TreeSet<>();
            for (Method m : methods) {
                names.add(m.getName());
            }
            return List.copyOf(names);
        }
    }

    /**
     * The methods guests can call on {@code service}: those of the interfaces it is registered
     * under ({@code objectClass}); registered under no interface it implements (as Object, say),
     * the public instance methods its own class declares. Never a method it inherits from a
     * superclass, nor one of Object's: only what the service declares is callable.
     */
    static List<Method> callable(Object service, Collection<String> objectClass) {
        List<Method> out = new ArrayList<>();
        for (Class<?> i : interfaces(service.getClass())) {
            if (objectClass.contains(i.getName())) {
                for (Method m : i.getMethods()) {
                    if (!Modifier.isStatic(m.getModifiers()) && !overridesObject(m)) {
                        out.add(m);
                    }
                }
            }
        }
        if (out.isEmpty()) {
            for (Method m : service.getClass().getDeclaredMethods()) {
                int mod = m.getModifiers();
                if (Modifier.isPublic(mod) && !Modifier.isStatic(mod) && !m.isSynthetic() && !m.isBridge() && !overridesObject(m)) {
                    out.add(m);
                }
            }
        }
        return List.copyOf(out);
    }

    /** Every interface {@code c} implements, through its superclasses and superinterfaces. */
    private static Set<Class<?>> interfaces(Class<?> c) {
        Set<Class<?>> out = new LinkedHashSet<>();
        List<Class<?>> todo = new ArrayList<>();
        for (Class<?> k = c; k != null; k = k.getSuperclass()) {
            todo.addAll(List.of(k.getInterfaces()));
        }
        while (!todo.isEmpty()) {
            Class<?> i = todo.removeLast();
            if (out.add(i)) {
                todo.addAll(List.of(i.getInterfaces()));
            }
        }
        return out;
    }

    private static boolean overridesObject(Method m) {
        try {
            Object.class.getMethod(m.getName(), m.getParameterTypes());
            return true;
        } catch (NoSuchMethodException e) {
            return false;
        }
    }

    /** Calls {@code method} of {@code exported} with {@code args}; an optional leading CallContext parameter gets {@code context}. */
    static Object invoke(Exported exported, String name, String method, List<Object> args, CallContext context) throws Exception {
        Object service = exported.service();
        boolean named = false;
        for (Method m : exported.methods()) {
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
