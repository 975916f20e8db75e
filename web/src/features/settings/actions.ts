// The user's own profile photo: set (an image they uploaded) or removed, then the profile
// loaded again as of that change.
import { api, call } from "@/api/client";
import { loadMe } from "@/lib/session";

export async function setPhoto(mediaId: string): Promise<void> {
  const done = await call(() => api.PUT("/v1/users/me/photo", { body: { media_id: mediaId } }));
  await loadMe(done.sequence);
}

export async function removePhoto(): Promise<void> {
  const done = await call(() => api.DELETE("/v1/users/me/photo"));
  await loadMe(done.sequence);
}
