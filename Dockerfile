# wx-kf: one image for the ingress, the worker and the admin listener (the compose file picks the command).
# Build: docker build -t wx-kf .

FROM node:22-bookworm-slim AS build
WORKDIR /app
RUN npm install -g pnpm@10.34.9
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
COPY packages/shared/package.json packages/shared/
COPY packages/wechat-sim/package.json packages/wechat-sim/
COPY packages/testkit/package.json packages/testkit/
COPY apps/ingress/package.json apps/ingress/
COPY apps/worker/package.json apps/worker/
COPY apps/admin/package.json apps/admin/
COPY bench/package.json bench/
RUN pnpm install --frozen-lockfile
COPY . .
# The packages compile their tests beside the code; none of them belongs in the image.
RUN pnpm build && find apps packages -path '*/dist/*' -name '*.test.*' -delete

# Production dependencies only, resolved from the same lockfile.
FROM node:22-bookworm-slim AS deps
WORKDIR /app
RUN npm install -g pnpm@10.34.9
COPY --from=build /app/pnpm-lock.yaml /app/pnpm-workspace.yaml /app/package.json ./
COPY --from=build /app/packages/shared/package.json packages/shared/
COPY --from=build /app/packages/wechat-sim/package.json packages/wechat-sim/
COPY --from=build /app/packages/testkit/package.json packages/testkit/
COPY --from=build /app/apps/ingress/package.json apps/ingress/
COPY --from=build /app/apps/worker/package.json apps/worker/
COPY --from=build /app/apps/admin/package.json apps/admin/
COPY --from=build /app/bench/package.json bench/
RUN pnpm install --frozen-lockfile --prod --filter @wx-kf/ingress... --filter @wx-kf/worker... --filter @wx-kf/admin...

FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app ./
COPY --from=build /app/packages/shared/dist packages/shared/dist
# The Redis scripts, read at run time from beside dist/ (packages/shared/lua).
COPY --from=build /app/packages/shared/lua packages/shared/lua
COPY --from=build /app/apps/ingress/dist apps/ingress/dist
COPY --from=build /app/apps/worker/dist apps/worker/dist
COPY --from=build /app/apps/admin/dist apps/admin/dist
COPY examples examples
# The queue CLI (README, "Dashboard, CLI and send API"): docker compose exec admin wx-kf-queues stats
RUN printf '#!/bin/sh\nexec node /app/apps/admin/dist/cli.js "$@"\n' > /usr/local/bin/wx-kf-queues \
  && chmod 755 /usr/local/bin/wx-kf-queues
# The official image's unprivileged user.
USER node
EXPOSE 3000 3001 9464
CMD ["node", "apps/ingress/dist/main.js"]
